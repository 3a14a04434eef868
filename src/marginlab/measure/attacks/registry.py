"""The attacks by name. Adding one takes its file and one line here (or, from outside the
package, one call of :func:`register_attack`)."""

from __future__ import annotations

from collections.abc import Mapping

from marginlab.measure.attacks.base import NORMS, Attack
from marginlab.measure.attacks.cw import CW
from marginlab.measure.attacks.deepfool import DEEPFOOL
from marginlab.measure.attacks.fmn import FMN
from marginlab.measure.attacks.pgd import PGD

BEST = "best"
"""Not an attack of its own: every registered attack of the norm, keeping, sample by sample,
the closest verified adversarial example."""

DEFAULT_ATTACKS: Mapping[str, str] = {"l2": "cw", "linf": "pgd"}
"""The attack of each norm when none is named."""

ATTACKS: dict[str, Attack] = {}
"""Every attack by name, in the order ``best`` runs them."""


def register_attack(attack: Attack) -> Attack:
    """Make ``attack`` available to :func:`~marginlab.measure.attacks.run_attack`, ``best``
    and ``marginlab attack --attack NAME``; returns it.

    Examples
    --------
    >>> from marginlab.measure.attacks.base import Attack
    >>> noop = Attack("noop", ("l2",), {}, build=lambda setup: lambda x, y: x)
    >>> register_attack(noop).name in ATTACKS
    True
    >>> del ATTACKS["noop"]
    """
    if attack.name == BEST or not attack.name.isidentifier():
        raise ValueError(f"attack.name: {attack.name!r} cannot name an attack; use a word")
    unknown = sorted(set(attack.norms) - set(NORMS))
    if not attack.norms or unknown:
        raise ValueError(f"attack.norms: expected some of {NORMS}, got {attack.norms!r}")
    if attack.name in ATTACKS and ATTACKS[attack.name] is not attack:
        raise ValueError(f"attack.name: {attack.name!r} is registered already")
    ATTACKS[attack.name] = attack
    return attack


def attacks_of(norm: str) -> tuple[str, ...]:
    """The registered attacks of ``norm``, default first.

    Examples
    --------
    >>> attacks_of("linf")
    ('pgd', 'fmn')
    """
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
    names = [name for name, attack in ATTACKS.items() if norm in attack.norms]
    names.sort(key=lambda name: name != DEFAULT_ATTACKS[norm])
    return tuple(names)


for _attack in (CW, DEEPFOOL, FMN, PGD):
    register_attack(_attack)
