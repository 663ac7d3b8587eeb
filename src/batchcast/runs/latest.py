"""``latest``: the newest committed successful run of a kind, found without listing every manifest.

Layout, beside the aliases::

    {name}/{version}/_latest/{kind}/{seq}.json   one node per move, created exclusively, never rewritten
    {name}/{version}/_latest/{kind}.json         the hint: a committed node and its seq, where readers start

A successful run *claims* just before its manifest is committed: it
creates the node after the last one if it is newer, by ``(run_ts,
action)``, than the run the last node stands for, and once committed it
points the hint at its node. Creating a node is the create-if-absent that
commits a manifest, so of two commits racing for one node only one wins,
and the other reads the winner's node and decides again: on every backend,
``latest`` only moves forward.

A reader reads the hint, steps forward to the last node (the hint lags a
racing or dying writer at most) and reads that node's manifest: three small
reads whatever the history. Claiming before committing keeps the answer
right if a process dies in between: a node past the hint whose run has no
manifest yet is in flight, and the node before it stands; after
``GRACE_S`` without one, the run is dead. What the index cannot vouch for
(the hint's run gone, no hint: a store from before the index, or a claim
that failed and took the hint away) is answered by a listing, and the
answer is appended as a node, so the next reader is fast again; a node
whose manifest cannot be read is answered by a listing each time, as
before the index, until the file is restored. A run committed by
something that does not claim (an older batchcast) is not seen until the
index is rebuilt: delete ``_latest/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import time

from batchcast.errors import BatchcastError, IntegrityError, RunNotFound, StoreError
from batchcast.runs import atomic
from batchcast.runs.manifest import Manifest
from batchcast.runs.translate import translated

LATEST = "_latest"
GRACE_S = 60.0  # a claim is made moments before its commit: this old without a manifest, it never commits
WALK = 8  # nodes in flight a reader steps back over before it asks a listing instead
CLAIMS = 50  # commits racing one claim before it gives up (and forgets the index)
NODE_KEYS = {"run_id", "run_ts", "action", "claimed_at"}
KIND = re.compile(r"[a-z][a-z0-9_]{0,62}")
log = logging.getLogger("batchcast")


class _Unvouched(Exception):
    """The index cannot vouch for an answer: a listing must give it (and, with ``rebuild``, be appended)."""

    def __init__(self, rebuild: bool = True):
        super().__init__()
        self.rebuild = rebuild


class Latest:
    """The ``latest`` part of :class:`~batchcast.runs.store.ArtifactStore` (which supplies paths and listings)."""

    @translated
    def latest(self, name: str, version: str, kind: str = "training") -> Manifest | None:
        """The newest committed successful run of that kind, or None."""
        seq = None
        try:
            seq, doc = self._tail(name, version, kind)
            return self._standing(name, version, kind, seq, doc, wait=False)
        except _Unvouched as unvouched:
            rebuild = unvouched.rebuild
        if seq is None:  # no hint: the last node is found by listing the nodes, before the runs (see _append)
            seq = self._last_seq(name, version, kind)
            rebuild = not self._in_flight(self._doc_or_none(name, version, kind, seq))
        found = self._listed(name, version, kind)
        try:
            if rebuild:  # never past a claim in flight: its run may commit after this listing, and be newer
                self._append(name, version, kind, seq, _node_of(found), committed=True)
        except BatchcastError as exc:  # a reader may not be allowed to write: its answer stands
            log.debug("the latest-run index of %s/%s was not rebuilt: %s", name, version, exc)
        return found

    @translated
    def claim_latest(self, manifest: Manifest) -> int | None:
        """Just before ``manifest``, a successful run, is committed: make it its kind's latest if it is newer.

        Returns the node to pass to :meth:`confirm_latest` once the manifest is committed, or None.
        """
        name, version, kind, ours = manifest.name, manifest.version, manifest.kind, _node_of(manifest)
        for _ in range(CLAIMS):
            seq = None
            try:
                seq, doc = self._tail(name, version, kind)
                if not _newer(ours, doc):  # the last node is newer: does its run stand?
                    standing = self._standing(name, version, kind, seq, doc, wait=True)
                    if standing is not None and not _newer(ours, _node_of(standing)):
                        return None
            except _Unvouched:
                if seq is None:
                    seq = self._last_seq(name, version, kind)
                    with contextlib.suppress(IntegrityError):  # a claim in flight: let it land in the listing
                        self._settle(self._doc_or_none(name, version, kind, seq))
                standing = self._listed(name, version, kind)
                if standing is not None and not _newer(ours, _node_of(standing)):
                    self._append(name, version, kind, seq, _node_of(standing), committed=True)  # a reader's rebuild
                    return None
            if self._append(name, version, kind, seq, ours, committed=False):
                return seq + 1
        raise StoreError(f"run {manifest.run_id}: {CLAIMS} other commits claimed latest first",
                         "commit fewer runs at once")

    def _claim(self, manifest: Manifest) -> int | None:
        """Claim ``latest`` for a run about to commit: its node, None if it claimed none, 0 if the claim failed.

        A failed claim does not stop the commit (the run is the record, the index a shortcut); the index is
        forgotten instead, before the commit and after, so that readers list the runs until it is rebuilt.
        """
        if not manifest.succeeded:
            return None
        try:
            return self.claim_latest(manifest)
        except BatchcastError as exc:
            log.warning("%s: 'latest' not recorded (%s); readers list the runs until it is", manifest.run_id,
                        exc.message)
            self._claimed(manifest, 0)
            return 0

    def _claimed(self, manifest: Manifest, node: int | None) -> None:
        with contextlib.suppress(BatchcastError):  # the run is committed whatever happens to its index
            if node == 0:
                self.forget_latest(manifest.name, manifest.version, manifest.kind)
            elif node is not None:
                self.confirm_latest(manifest, node)

    @translated
    def confirm_latest(self, manifest: Manifest, seq: int) -> None:
        """Point the hint at node ``seq``, ``manifest``'s claim, now that the manifest is committed."""
        self._hint(manifest.name, manifest.version, manifest.kind, seq, _node_of(manifest))

    @translated
    def forget_latest(self, name: str, version: str, kind: str) -> None:
        """Send the next reader of ``latest`` to a listing: what a run whose claim failed does around its commit."""
        try:
            self.fs.rm_file(self._latest_path(name, version, kind))
        except FileNotFoundError:
            pass

    # -- the nodes ----------------------------------------------------------

    def _latest_path(self, name: str, version: str, kind: str, seq: int | None = None) -> str:
        if not KIND.fullmatch(kind):
            raise RunNotFound(f"'{kind}' is not a kind of run", "use training, application or evaluation")
        return self._path(name, version, LATEST, f"{kind}.json" if seq is None else f"{kind}/{seq:012d}.json")

    def _doc(self, path: str) -> dict | None:
        try:
            doc = json.loads(self.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except ValueError:  # not JSON: not written by a claim
            raise _Unvouched from None
        if not isinstance(doc, dict) or not NODE_KEYS <= doc.keys():
            raise _Unvouched
        return doc

    def _doc_or_none(self, name: str, version: str, kind: str, seq: int) -> dict | None:
        try:
            return self._doc(self._latest_path(name, version, kind, seq)) if seq else None
        except _Unvouched:
            return None

    def _tail(self, name: str, version: str, kind: str) -> tuple[int, dict]:
        """The last node's seq and document, stepping forward from the hint; _Unvouched without a hint."""
        hint = self._doc(self._latest_path(name, version, kind))
        if hint is None or not isinstance(hint.get("seq"), int):
            raise _Unvouched
        seq, doc = hint["seq"], hint
        while (following := self._doc(self._latest_path(name, version, kind, seq + 1))) is not None:
            seq, doc = seq + 1, following
        return seq, doc

    def _last_seq(self, name: str, version: str, kind: str) -> int:
        """The last node's seq found by listing the nodes (0 before the first): for a missing hint."""
        self._fresh()
        try:
            names = self.fs.ls(self._path(name, version, LATEST, kind), detail=False)
        except FileNotFoundError:
            return 0
        return max((int(p[-17:-5]) for p in names if re.fullmatch(r".*/\d{12}\.json", p)), default=0)

    def _append(self, name: str, version: str, kind: str, after: int, doc: dict, *, committed: bool) -> bool:
        """Create the node after ``after`` (and, for a ``committed`` run, the hint); False if another was first.

        ``after`` is the last node seen *before* deciding, so a decision made on what changed since is refused.
        """
        if not atomic.create_exclusive(self.fs, self._latest_path(name, version, kind, after + 1),
                                       json.dumps(doc).encode()):
            return False
        if committed:
            self._hint(name, version, kind, after + 1, doc)
        return True

    def _hint(self, name: str, version: str, kind: str, seq: int, doc: dict) -> None:
        # A hint names a committed run: if its manifest is missing, the run was deleted, not in flight.
        atomic.replace(self.fs, self._latest_path(name, version, kind),
                       json.dumps({**doc, "seq": seq, "committed": True}).encode())

    # -- what the nodes stand for -------------------------------------------

    def _standing(self, name: str, version: str, kind: str, seq: int, doc: dict, *, wait: bool) -> Manifest | None:
        """The run node ``seq`` stands for: its own if committed and successful, else the node before's.

        A run in flight is stepped over by a reader, and waited for by a writer (``wait``); a run gone
        or unreadable raises _Unvouched.
        """
        stepped_over_flight = False
        for _ in range(WALK):
            if doc["run_id"] is None:  # a listing that found no run
                return None
            try:
                found = self._settle(doc) if wait else self._committed(doc)
            except IntegrityError:  # listed, and not rebuilt past: restored, it is the latest again
                raise _Unvouched(False) from None
            if found is None and (doc.get("committed") or _age(doc) > GRACE_S):  # deleted, or dead before commit
                raise _Unvouched(not stepped_over_flight)
            if found is not None and found.succeeded:
                return found
            stepped_over_flight |= found is None  # else its commit lost to another's failed manifest
            seq -= 1
            if seq == 0:
                return None
            doc = self._doc(self._latest_path(name, version, kind, seq))
            if doc is None:
                raise _Unvouched(not stepped_over_flight)
        raise _Unvouched(False)

    def _committed(self, doc: dict) -> Manifest | None:
        try:
            return self.manifest(doc["run_id"])
        except RunNotFound:
            return None

    def _settle(self, doc: dict | None) -> Manifest | None:
        """The manifest of node ``doc``'s run, waited for while its claim is in flight; None if none came."""
        while doc is not None and doc["run_id"] is not None:
            found = self._committed(doc)
            if found is not None or _age(doc) > GRACE_S:
                return found
            time.sleep(0.05)
        return None

    def _in_flight(self, doc: dict | None) -> bool:
        if doc is None or doc["run_id"] is None:
            return False
        try:
            return self._committed(doc) is None and _age(doc) <= GRACE_S
        except IntegrityError:
            return False

    def _listed(self, name: str, version: str, kind: str) -> Manifest | None:
        done = [m for m in self.list_runs(name, version) if m.kind == kind and m.succeeded]
        return done[-1] if done else None


def _node_of(run: Manifest | None) -> dict:
    return {"run_id": run.run_id if run else None, "run_ts": run.run_ts if run else "",
            "action": run.action if run else "", "claimed_at": dt.datetime.now(dt.UTC).isoformat()}


def _newer(ours: dict, other: dict) -> bool:
    """Whether the run of node ``ours`` sorts after ``other``'s, as a listing sorts runs."""
    return other["run_id"] is None or (ours["run_ts"], ours["action"]) > (other["run_ts"], other["action"])


def _age(doc: dict) -> float:
    try:
        claimed = dt.datetime.fromisoformat(doc["claimed_at"])
    except (TypeError, ValueError):
        return GRACE_S + 1
    return (dt.datetime.now(dt.UTC) - claimed).total_seconds()
