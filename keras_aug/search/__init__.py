"""Automated augmentation: search the policy suited to a dataset (`kaug search`).

Methods (`search_policy(task, method=...)`): `"fast_aa"` (Fast AutoAugment, Optuna TPE, the
default), `"pba"` (Population Based Augmentation, Ray Tune PBT), `"autoaugment"` (a recurrent
controller trained with PPO) and `"faster_aa"` (differentiable search). Each returns a
`SearchResult` whose policy `keras_aug.layers.AutoAugment` applies.
"""
from keras_aug.search.api import METHODS, search_policy, shipped_policy
from keras_aug.search.budget import Budget
from keras_aug.search.child import ChildConfig, DensityScorer, small_cnn, train_child
from keras_aug.search.controller import Controller
from keras_aug.search.faster_aa import DifferentiablePolicy
from keras_aug.search.report import SearchReport, SearchResult
from keras_aug.search.schedule import PolicySchedule, ScheduledPolicy
from keras_aug.search.space import SEARCH_OPS, SearchSpace
from keras_aug.search.task import SearchTask, stratified_folds
from keras_aug.search.workdir import prepare_workdir

__all__ = ["search_policy", "shipped_policy", "METHODS", "SearchTask", "SearchSpace", "SEARCH_OPS",
           "ChildConfig", "SearchResult", "SearchReport", "PolicySchedule", "ScheduledPolicy", "Budget",
           "DensityScorer", "Controller", "DifferentiablePolicy", "small_cnn", "train_child",
           "stratified_folds", "prepare_workdir"]
