"""Multiplayer skill ratings after a race, pure: old ratings and standings in, new ones out.

A thin wrapper around openskill's Plackett-Luce model (Weng & Lin 2011), a
Bayesian rating for free-for-all games of any size. It is rescaled so a new
player sits at 1500 +/- 500 -- numbers typists read like chess ratings -- and
the matchmaker compares ``mu``; profiles and leaderboards show ``display``.

Rules
-----
1. Guests, and standings marked ``"rated": false`` (flagged finishes, custom
   texts), race unrated: they are dropped before rating, and the rated
   players are ranked among themselves by place (equal place, a tie). A
   standing without ``rated`` (an event from before the field) is rated
   unless it is a guest's. A racer who did not finish is rated at their
   place: a forfeit, a matched no-show among them, is a loss.
2. A race with fewer than two rated players changes nobody.
3. A rated player without a stored rating starts from ``Rating()``.
4. Only the players of the race are returned, each with ``races`` + 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from openskill.models import PlackettLuce

from typogram.ratings import display_of

MU: Final = 1500.0
SIGMA: Final = MU / 3
# openskill's defaults (25, 25/3, beta 25/6, tau 25/300) scaled by 60.
_MODEL: Final = PlackettLuce(mu=MU, sigma=SIGMA, beta=SIGMA / 2, tau=MU / 300)


@dataclass(frozen=True, slots=True)
class Rating:
    mu: float = MU
    sigma: float = SIGMA
    races: int = 0

    @property
    def display(self) -> float:
        """A conservative estimate (mu - 3 sigma, floored at 0): rises as certainty does."""
        return display_of(self.mu, self.sigma)


def rated(standing: Mapping[str, Any]) -> bool:
    """Rule 1 for one standing."""
    guest = bool(standing.get("guest", False))
    return not guest and bool(standing.get("rated", True))


def update(
    ratings: Mapping[str, Rating], standings: Sequence[Mapping[str, Any]]
) -> dict[str, Rating]:
    """New ratings for the rated players of one race.

    ``standings`` are a race's (``rooms.race_state.standings``): mappings with
    ``user``, ``place``, ``guest`` and ``rated``. ``ratings`` holds the stored
    ratings of (at least) the rated players; missing ones start fresh.
    Raises ``ValueError`` when a user appears twice.
    """
    players = [s for s in standings if rated(s)]
    if len({s["user"] for s in players}) != len(players):
        raise ValueError("a user appears twice in the standings")
    if len(players) < 2:
        return {}
    before = [ratings.get(s["user"], Rating()) for s in players]
    teams = [[_MODEL.rating(mu=r.mu, sigma=r.sigma)] for r in before]
    after = _MODEL.rate(teams, ranks=[float(s["place"]) for s in players])
    return {
        s["user"]: Rating(team[0].mu, team[0].sigma, old.races + 1)
        for s, old, team in zip(players, before, after, strict=True)
    }
