"""bench.protocol_cost: one short epoch of a distillation recipe through `fit`, read back as a cost row."""

import tomli_w
from helpers import tiny_table

from bench.protocol_cost import measure


def test_measure_reads_the_epoch_of_a_distillation_recipe(tmp_path):
    table = tiny_table(name="cost-kd", method="kd", epochs=3, teacher={"model": "conv4", "checkpoint": "unused"})
    table["data"]["train_subset"] = 96  # the recipe's full epoch: 3 steps of 32
    recipe = tmp_path / "cost-kd.toml"
    recipe.write_text(tomli_w.dumps(table))
    row = measure(recipe, tmp_path / "work", subset=64, data_dir=None)
    assert (row["recipe"], row["method"], row["epochs"]) == ("cost-kd", "kd", 3)
    assert row["steps"] == 2  # 64 images in batches of 32
    assert row["s_per_step"] > 0 and row["eval_s"] >= 0
    assert row["epoch_s"] == row["eval_s"] + 3 * row["s_per_step"]
