"""svchunt extension `type: absence`: an occurrence of `rules` with NO occurrence of `absent` in the same
group within ±timespan (e.g. a service ImagePath written in the registry with no 7045/4697 install event).

Each such occurrence is one alert. It is decided once input is complete up to its time + timespan.
"""

from __future__ import annotations

import bisect

from svchunt.correlate.alerts import make_hit
from svchunt.correlate.node import Buffer, Node
from svchunt.correlate.occurrence import Hit, Occ


class AbsenceNode(Node):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.absent_ids = set(self.rule.absent_ids)

    def _advance_group(self, group: tuple, buf: Buffer, hits: list[Hit]) -> None:
        span = self.rule.timespan_us
        items = buf.items
        # absent occurrences stay in the buffer only as long as a pending present one may need them
        index = buf.start
        while index < len(items):
            occ = items[index]
            if not (occ.rules - self.absent_ids):
                index += 1
                continue
            if occ.ts + span >= self.horizon:
                break
            if not occ.rules & self.absent_ids and not _absent_near(items, buf.start, occ.ts, span, self.absent_ids):
                hits.append(make_hit(self.rule, [occ], group, {"count": 1, "absent_within": self.rule.timespan}))
            occ.rules = occ.rules & self.absent_ids  # decided: from now on it only matters as an absent one
            index += 1
        # forget what no undecided occurrence can reach any more
        keep_from = min([self.horizon, *(o.ts for o in items[buf.start :] if o.rules - self.absent_ids)]) - span
        stop = buf.start
        while stop < len(items) and (items[stop].ts < keep_from or not items[stop].rules):
            stop += 1
        buf.end = stop
        buf.drop_front(stop)

    def output_horizon(self) -> int:
        pending = [
            occ.ts
            for buf in self.groups.values()
            for occ in buf.items[buf.start :]
            if occ.rules - self.absent_ids
        ]
        return min([self.horizon, *pending])


def _absent_near(items: list[Occ], start: int, ts: int, span: int, absent: set[str]) -> bool:
    low = bisect.bisect_left(items, ts - span, lo=start, key=lambda o: o.ts)
    for occ in items[low:]:
        if occ.ts > ts + span:
            return False
        if occ.rules & absent:
            return True
    return False
