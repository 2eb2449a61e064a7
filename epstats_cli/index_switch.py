"""What an interrupted switch of method (`indexes apply --switch-method`) left under its
temporary names, and what becomes of it: dropped by `indexes apply` and maintain's cleanup when
not needed, swapped in by the next switch when it is what that switch would build. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from epstats_cli.index_method import Choice


def switch_names(name: str) -> tuple[str, str]:
    """The temporary names of a switch: the new index while it is built, the old one between
    the swap and its drop (within NAMEDATALEN)."""
    return f"{name[:55]}_switch", f"{name[:55]}_old"


@dataclass(frozen=True)
class Fate:
    """What becomes of a valid index left under a switch's temporary name."""

    drop: bool  # not needed: `indexes apply` and maintain's cleanup drop it
    reuse: bool  # the next `indexes apply --switch-method` swaps it in instead of building
    why: str
    fix: str

    @property
    def text(self) -> str:
        return f"{self.why} ({self.fix})"


DROPS = "epstats indexes apply or epstats maintain --only cleanup drops it"


def same_build(definition: str, method: str, choice: Choice | None) -> bool:
    """Whether an index (pg_get_indexdef) is what a build of `method` would make now: for a
    measured BRIN, its operator class and pages_per_range too."""
    if f" USING {method} " not in definition:
        return False
    if method != "brin" or choice is None:
        return True
    multi = "_minmax_multi_ops" in definition
    if (choice.opclass is not None) != multi or (
        choice.opclass and choice.opclass not in definition
    ):
        return False
    return choice.pages_per_range is None or f"pages_per_range='{choice.pages_per_range}'" in (
        definition
    )


def switch_fate(
    kind: str,
    left_method: str,
    left_definition: str,
    target_method: str | None,
    wanted: str,
    choice: Choice | None,
) -> Fate:
    """A valid `<name>_old` (kind old: the switch stopped after the swap) or `<name>_switch`
    (kind new: stopped during or after the build; the server finishes a CREATE INDEX whose
    client was killed) beside the recommended `<name>` (target_method: its method, None when
    missing or invalid). `wanted`: the method `<name>` should have (`auto` unmeasured: not
    known, and `choice` None or cancelled); `choice`: the measured one, for a BRIN's options."""
    if kind == "old":
        if target_method is None:
            return Fate(False, False, "the index it replaced is missing", "kept until it is built")
        return Fate(True, False, f"the names were swapped: the {target_method} replaced it", DROPS)
    if target_method == left_method:
        return Fate(True, False, f"not needed: the index is a {target_method} already", DROPS)
    if target_method is None:
        return Fate(True, False, "not needed: the index it was to replace is gone", DROPS)
    if wanted == "auto" or (choice is not None and not choice.measured):
        return Fate(
            False,
            False,
            "the measurement decides whether it is still wanted",
            "epstats indexes apply --switch-method swaps it in or drops it",
        )
    if wanted == left_method and same_build(left_definition, left_method, choice):
        return Fate(
            False,
            True,
            f"a complete {left_method}, as the switch would build it",
            "epstats indexes apply --switch-method swaps it in without building again",
        )
    return Fate(True, False, f"not needed: the index should be a {wanted} as it is now", DROPS)
