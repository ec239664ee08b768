"""Carrying an experiment's params into conf/ (`tabml promote EXP`). Pure: two params trees in,
the edits out; `tabml.stages.promote` reads the experiment, writes the files and checks that
conf/ now composes into exactly the experiment's params.

An experiment differs from conf/ in two ways, each written where a person would write it:

- **another option of a group** (`-S model=logreg`): the group's identifying key (`name`, or
  `method` for split) names an option file of conf/<group>/, which becomes the default in
  conf/config.yaml;
- **a value** (`-S model.learning_rate=0.05`): the key is set in the file of the option the
  group selects (conf/model/lightgbm.yaml), or in conf/config.yaml for top-level keys (`seed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# the key whose value names a group's option (the option file's name, for these groups)
IDENTIFYING_KEY = {"dataset": "name", "model": "name", "split": "method", "release": "name"}


@dataclass
class Edits:
    """What promoting an experiment changes in conf/."""

    # group -> the option conf/config.yaml must select
    choices: dict[str, str] = field(default_factory=dict)
    # conf-relative file -> {dotted key within the file: value}
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.choices or self.values)


def leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a params tree by dotted key (lists are leaves)."""
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def changed_choices(
    experiment: Mapping[str, Any], current: Mapping[str, Any], options: Mapping[str, list[str]]
) -> dict[str, str]:
    """Groups whose experiment selects another option: group -> that option (it must be an
    option file of conf/<group>/, listed in `options`)."""
    out = {}
    for group, key in IDENTIFYING_KEY.items():
        mine, theirs = (current.get(group) or {}).get(key), (experiment.get(group) or {}).get(key)
        if theirs is not None and theirs != mine:
            if str(theirs) not in options.get(group, []):
                raise ValueError(
                    f"the experiment's {group}.{key} is '{theirs}', and conf/{group}/ has no "
                    f"{theirs}.yaml to select; add that option first"
                )
            out[group] = str(theirs)
    return out


def value_edits(
    experiment: Mapping[str, Any], current: Mapping[str, Any], choices: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """The values to set, by the conf file that sets them (`choices`: the option each group
    selects once the changed choices are made)."""
    mine, theirs = leaves(current), leaves(experiment)
    gone = sorted(set(mine) - set(theirs))
    if gone:
        raise ValueError(
            f"the experiment has no {', '.join(gone[:5])}: it was run with another version of "
            "tabml's config, and cannot be carried into this one key by key"
        )
    out: dict[str, dict[str, Any]] = {}
    for key, value in theirs.items():
        if key in mine and mine[key] == value:
            continue
        group, _, rest = key.partition(".")
        if group in choices and rest:
            out.setdefault(f"{group}/{choices[group]}.yaml", {})[rest] = value
        else:
            out.setdefault("config.yaml", {})[key] = value
    return out
