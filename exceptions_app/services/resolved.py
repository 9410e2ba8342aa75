"""What a final resolution makes in the domain, inside the resolving transaction: the
engine's one resolved handler (``workflows.hooks.case_resolved``, registered in
``ExceptionsAppConfig.ready``), so the three commit with the resolution or not at all:

1. its labelled example (``resolutions.recording_labelled_example``);
2. its decision's place in the AI system's feed (``callbacks.taking_feed_place``), and
   its webhook (``callbacks.send_resolution``);
3. what people said, added to the quality rollup (``quality.counting_resolution``).

The first two each take the next place of a gap-free sequence, one writer at a time,
under a lock held until commit (``db.hold_transaction_lock``). The lock must be held
before the statement that reads the last place starts (a statement's snapshot is taken
before any lock it waits for), so both are taken here first, in one statement; then the
three services' writes run as one statement (``db.write_together``): a round trip each
cost as much CPU as the statement itself. They touch different tables, and none reads
what another writes. The webhook follows: it names the feed's place.
"""

from exceptions_app.services import callbacks, quality, resolutions
from workflows import db


def case_resolved(*, case, resolution) -> None:
    decision = resolutions.decision_of(case)  # read once; each step below reads it too
    if decision is None:  # a case no decision opened: nothing to label, feed or count
        return
    # In this order, as every resolution takes them: no two transactions wait on each other.
    db.hold_transaction_lock(resolutions.LABELS_LOCK, callbacks.feed_lock(decision))
    db.write_together(
        resolutions.recording_labelled_example(case=case, resolution=resolution,
                                               decision=decision),
        callbacks.taking_feed_place(decision),
        quality.counting_resolution(case=case, resolution=resolution, decision=decision))
    callbacks.send_resolution(decision=decision, resolution=resolution)
