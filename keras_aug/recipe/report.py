"""What `kaug train` writes: the model, a serving SavedModel, `report.md` and its pictures."""
from __future__ import annotations

import json
import os

import numpy as np


def save_confusion(confusion: np.ndarray, class_names, path: str, title: str) -> str:
    """A confusion-matrix PNG (rows: true class, columns: predicted); returns the path."""
    from keras_aug.viz import _pyplot

    plt = _pyplot()
    k = len(class_names)
    size = min(12.0, 2.0 + 0.45 * k)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    if k <= 30:
        ticks = np.arange(k)
        ax.set_xticks(ticks, class_names, rotation=90)
        ax.set_yticks(ticks, class_names)
        if k <= 15:
            for (i, j), n in np.ndenumerate(confusion):
                if n:
                    ax.text(j, i, str(n), ha="center", va="center",
                            color="white" if n > confusion.max() / 2 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_outputs(out: str, model, report, data, augment) -> dict[str, str]:
    """Write everything into `out` and record the paths in `report.files`."""
    from keras_aug import viz
    from keras_aug.diagnose.plot import plot_diagnosis
    from keras_aug.recipe.serving import export_classifier

    os.makedirs(out, exist_ok=True)
    files = report.files
    files["model"] = os.path.join(out, "model.keras")
    model.save(files["model"])
    files["saved_model"] = export_classifier(
        model, os.path.join(out, "saved_model"), class_names=data.class_names,
        image_size=data.image_shape[:2], channels=data.image_shape[2])
    files["learning_curves"] = plot_diagnosis(
        report.history, os.path.join(out, "learning_curves.png"), report.diagnosis,
        title=f"validated run: {report.diagnosis.regime}" if report.diagnosis else None)
    if report.confusion is not None:
        files["confusion"] = save_confusion(report.confusion, data.class_names,
                                            os.path.join(out, "confusion.png"),
                                            "test split, final model")
    originals = data.images[np.linspace(0, len(data.images) - 1, 8).astype(int)]
    if augment is not None:
        labels = np.eye(data.num_classes, dtype=np.float32)[
            data.labels[np.linspace(0, len(data.images) - 1, 8).astype(int)]]
        augmented, _ = augment((originals.astype(np.float32), labels))
        files["preview"] = viz.save_image_grid(
            np.concatenate([originals, np.asarray(augmented)]), os.path.join(out, "preview.png"),
            titles=["yours"] * 8 + ["augmented"] * 8, suptitle="the chosen augmentation")
    files["report"] = os.path.join(out, "report.md")
    with open(files["report"], "w") as f:
        f.write(to_markdown(report))
    files["report_json"] = os.path.join(out, "report.json")
    with open(files["report_json"], "w") as f:
        json.dump(report.to_dict(), f, indent=1)
    return files


def to_markdown(report) -> str:
    """`report.md`: decisions, candidates, the validation/test table, the pictures."""
    lines = ["# kaug train report", "", "## Decisions", "", report.explain(), "",
             "## Candidates (held-out images)", "",
             "| setup | validation accuracy | validation loss | seconds |", "|---|---|---|---|"]
    for c in report.candidates:
        if c.accuracy is None:
            lines.append(f"| {c.name} | not tried (budget) | | |")
        else:
            lines.append(f"| {c.name} | {c.accuracy:.3f} | {c.loss:.3f} | {c.seconds:.0f} |")
    lines += ["", "## Results", "", "| split | accuracy | loss |", "|---|---|---|",
              f"| validation (held out, validated run) | {report.validation['accuracy']:.3f} | "
              f"{report.validation['loss']:.3f} |"]
    if report.test is not None:
        lines.append(f"| test (final model, read once) | {report.test['accuracy']:.3f} | |")
    else:
        lines.append("| test | no test split in this dataset | |")
    lines += ["", f"{report.steps} steps per run; final model "
              f"{'retrained on every image' if report.refit else 'from the validated run'}; "
              f"{report.seconds:.0f} s in all.", ""]
    if report.diagnosis is not None:
        lines += ["## Regime of the validated run", "", "```", report.diagnosis.explain(), "```",
                  ""]
    for key, title in (("learning_curves", "Learning curves"), ("confusion", "Confusion matrix"),
                       ("preview", "The chosen augmentation on your images")):
        if key in report.files:
            lines += [f"## {title}", "", f"![{title}]({os.path.basename(report.files[key])})", ""]
    if report.skipped:
        lines += ["## Skipped files", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)
