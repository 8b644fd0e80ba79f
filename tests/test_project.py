"""project.yml is valid, its workflows name real commands, and every config it uses exists."""
from pathlib import Path

from weasel.util import load_project_config

ROOT = Path(__file__).resolve().parents[1]


def test_project_yml_is_valid_and_consistent():
    config = load_project_config(ROOT)
    commands = {c["name"]: c for c in config["commands"]}
    for workflow, steps in config["workflows"].items():
        missing = [s for s in steps if s not in commands]
        assert not missing, f"workflow {workflow} names unknown commands {missing}"
    for command in commands.values():
        for path in command.get("deps", []) + command.get("outputs", []) + command.get("outputs_no_cache", []):
            # guards against confection joining adjacent "${vars.x}" list items into one string
            assert ", " not in path, f"{command['name']}: {path!r} is several paths joined into one"
        for dep in command.get("deps", []):
            if dep.startswith("configs/") or dep.startswith("assets/sample/"):
                assert (ROOT / dep).exists(), f"{command['name']} depends on missing {dep}"
    for asset in config["assets"]:
        assert asset["dest"].startswith("assets/") and ("url" in asset or "git" in asset)
        if "checksum" in asset:
            assert len(asset["checksum"]) == 32  # weasel checks MD5


def test_all_workflow_ends_with_an_installed_evaluated_package():
    config = load_project_config(ROOT)
    steps = config["workflows"]["all"]
    assert steps.index("package-ner") < steps.index("install-ner") < steps.index("evaluate-installed-ner")
