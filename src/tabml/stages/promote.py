"""promote: the shell of `tabml promote EXP`: an experiment's params, carried into conf/ so that
`tabml params` (and a fresh clone's `dvc repro`) reproduce it. See tabml.governance.promote."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from tabml.core import io
from tabml.core.config import read_params
from tabml.core.errors import ConfigError
from tabml.core.log import info
from tabml.governance import promote as plan


def run(root: Path, experiment: str, config_dir: Path, output: Path) -> plan.Edits:
    """Write `experiment`'s params into conf/, check the round trip, then compose `output`."""
    import yaml

    from tabml.adapters.dvc_adapter import experiment_params
    from tabml.core import params_guard

    theirs = yaml.safe_load(experiment_params(root, experiment))
    originals: dict[Path, str | None] = {}  # every conf file changed, as it was
    try:
        edits, text = _carry(experiment, theirs, config_dir, originals)
    except BaseException:
        for path, was in originals.items():  # nothing half-done stays in conf/
            if was is None:
                path.unlink(missing_ok=True)
            else:
                io.write_text(path, was)
        raise
    for group, option in edits.choices.items():
        info(f"promote: {config_dir}/config.yaml: {group} is now {option}")
    for rel, values in edits.values.items():
        for key, value in values.items():
            info(f"promote: {config_dir}/{rel}: {key}: {value!r}")
    if not edits:
        info(f"promote: conf/ already composes into {experiment}'s params; nothing to change")
    io.write_text(output, text)
    params_guard.remember(output)
    info(
        f"promote: wrote {output}; conf/ now reproduces {experiment}. Commit conf/ and "
        f"params.yaml, then 'dvc repro'"
    )
    return edits


def _carry(
    experiment: str, theirs: Any, config_dir: Path, originals: dict[Path, str | None]
) -> tuple[plan.Edits, str]:
    """Make the edits (recording each file's text first in `originals`), compose conf/ again
    and check that it gives the experiment's params; return the edits and the composed text."""
    from tabml.adapters.dvc_adapter import compose_params, conf_choices

    def remember(path: Path) -> None:
        if path not in originals:
            originals[path] = path.read_text(encoding="utf-8") if path.exists() else None

    with tempfile.TemporaryDirectory() as tmp:
        composed = Path(tmp) / "params.yaml"
        compose_params(config_dir, composed, [])
        mine = read_params(composed)
        options = {
            group: sorted(p.stem for p in (config_dir / group).glob("*.yaml"))
            for group in plan.IDENTIFYING_KEY
        }
        try:
            edits = plan.Edits(choices=plan.changed_choices(theirs, mine, options))
        except ValueError as err:
            raise ConfigError(f"tabml promote {experiment}: {err}") from None
        for group, option in edits.choices.items():
            remember(config_dir / "config.yaml")
            _set_default(config_dir / "config.yaml", group, option)
        if edits.choices:  # the values, against the options now selected
            compose_params(config_dir, composed, [])
            mine = read_params(composed)
        try:
            edits.values = plan.value_edits(theirs, mine, conf_choices(config_dir, []))
        except ValueError as err:
            raise ConfigError(f"tabml promote {experiment}: {err}") from None
        for rel, values in edits.values.items():
            remember(config_dir / rel)
            _set_values(config_dir / rel, values)
        compose_params(config_dir, composed, [])
        after, text = read_params(composed), composed.read_text(encoding="utf-8")
    wanted = plan.leaves(theirs)
    wrong = {k: (v, wanted.get(k)) for k, v in plan.leaves(after).items() if wanted.get(k) != v}
    if wrong:
        shown = "; ".join(
            f"{k}: {a!r}, the experiment {b!r}" for k, (a, b) in list(wrong.items())[:5]
        )
        raise ConfigError(
            f"tabml promote {experiment}: conf/ would compose differently ({shown}), so "
            "conf/ was left as it was"
        )
    return edits, text


def _set_default(config_file: Path, group: str, option: str) -> None:
    import re

    text = config_file.read_text(encoding="utf-8")
    pattern = re.compile(rf"^(\s*-\s*{re.escape(group)}:\s*)(\S+)(.*)$", re.MULTILINE)
    if not pattern.search(text):
        raise ConfigError(f"{config_file}: no '- {group}: NAME' line in its defaults to change")
    io.write_text(config_file, pattern.sub(rf"\g<1>{option}\g<3>", text, count=1))


def _set_values(path: Path, values: dict[str, Any]) -> None:
    """Set dotted keys in a YAML file, keeping its comments and order (ruamel.yaml)."""
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    data = yaml.load(path.read_text(encoding="utf-8")) if path.exists() else None
    if data is None:
        data = {}
    for dotted, value in values.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            if part not in node or not isinstance(node[part], dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    out = StringIO()
    yaml.dump(data, out)
    io.write_text(path, out.getvalue())
