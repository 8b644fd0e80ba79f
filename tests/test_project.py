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


# Options whose value a step writes, not reads.
OUTPUT_OPTIONS = {"--output", "-o", "--dev-output", "--summary-json", "--paths.output", "--predictions"}
# Options whose value may be a Hugging Face hub id rather than a file: weasel would refuse to run a
# step whose dep does not exist, so these are deliberately not deps.
NOT_A_FILE_OPTIONS = {"--paths.model", "--metrics-data", "--vars.encoder"}  # a hub id or folder; a label naming the data


def _read_paths(command):
    """Paths a step's script reads: path-like arguments that are not output-option values, not
    its declared outputs (or inside them), and not a hub id option."""
    import shlex

    outputs = command.get("outputs", []) + command.get("outputs_no_cache", [])
    reads = []
    for line in command.get("script", []):
        tokens = shlex.split(line)
        for i, token in enumerate(tokens):
            option = tokens[i - 1] if i else ""
            if token.startswith("-") or "/" not in token or "://" in token:
                continue
            if option in OUTPUT_OPTIONS or option in NOT_A_FILE_OPTIONS:
                continue
            if any(token == out or token.startswith(out.rstrip("/") + "/") or out.startswith(token.rstrip("/") + "/") for out in outputs):
                continue
            reads.append(token)
    return reads


def test_every_step_declares_the_files_it_reads():
    """A step whose script reads a file it does not list in `deps` is not rerun when that file
    changes (and `spacy project run` cannot order it): every read path is a dep or lies inside one."""
    config = load_project_config(ROOT)
    undeclared = []
    for command in config["commands"]:
        deps = command.get("deps", [])
        for path in _read_paths(command):
            if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps):
                undeclared.append(f"{command['name']} reads {path} but its deps are {deps}")
    assert undeclared == []


def test_read_paths_sees_inputs_and_skips_outputs():
    """The checker itself, on a step shaped like evaluate-qa before its deps were fixed."""
    command = {
        "name": "evaluate-qa",
        "script": ["electramed qa-score training/qa/model-best assets/qa_test.json assets/golden.json --output metrics/qa.json",
                   "python -m spacy train configs/qa.cfg --output training/qa --paths.model some/hub-id"],
        "deps": ["training/qa/model-best", "assets/golden.json", "configs/qa.cfg"],
        "outputs": ["metrics/qa.json", "training/qa/model-best"],
    }
    assert _read_paths(command) == ["assets/qa_test.json", "assets/golden.json", "configs/qa.cfg"]


def test_each_real_pipeline_is_one_command_running_a_workflow_with_declared_vars():
    """`spacy project run bc5cdr|ddi|chemprot|bioasq`: each runs one workflow that ends in an installed package, and
    every var it sets is one the project declares (a misspelt var would be silently ignored by weasel)."""
    import re
    import shlex

    config = load_project_config(ROOT, interpolate=False)
    commands = {c["name"]: c for c in config["commands"]}
    for name, package in [("bc5cdr", "ner"), ("ddi", "re"), ("chemprot", "re"), ("bioasq", "qa")]:
        (line,) = commands[name]["script"]
        args = shlex.split(line)
        assert args[:5] == ["python", "-m", "spacy", "project", "run"] and args[6] == ".", line
        workflow = config["workflows"][args[5]]
        assert f"install-{package}" in workflow and f"evaluate-installed-{package}" in workflow
        set_vars = [a[len("--vars."):] for a in args if a.startswith("--vars.")]
        assert set_vars and set(set_vars) <= set(config["vars"]), set(set_vars) - set(config["vars"])
        used = set(re.findall(r"\$\{vars\.(\w+)\}", " ".join(c for step in workflow for c in commands[step]["script"])))
        assert {"encoder"} <= set(set_vars) & used
