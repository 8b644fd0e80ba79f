"""benchmarks/ner_accuracy/collect_ner_run.py reads the dev curve off a spaCy training log."""
from conftest import load_benchmark

LOG = """E    #       LOSS TRANS...  LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE
---  ------  -------------  --------  ------  ------  ------  ------
  0       0         225.65    471.28    7.36    4.01   44.82    0.07
  4     300        4708.78   7807.44   80.31   80.49   80.14    0.80
"""


def test_dev_curve_from_a_training_log():
    rows = load_benchmark("collect_ner_run").dev_curve(LOG)
    assert rows == [{"epoch": 0, "step": 0, "dev_f": 7.36, "dev_p": 4.01, "dev_r": 44.82},
                    {"epoch": 4, "step": 300, "dev_f": 80.31, "dev_p": 80.49, "dev_r": 80.14}]


def test_a_resumed_runs_reprinted_rows_count_once():
    resumed = LOG + "continuing from checkpoint after update 300\n" + LOG.split("\n", 2)[2] + \
        "  6     450        1000.00   2000.00   81.48   80.02   82.99    0.81\n"
    rows = load_benchmark("collect_ner_run").dev_curve(resumed)
    assert [r["step"] for r in rows] == [0, 300, 450]
