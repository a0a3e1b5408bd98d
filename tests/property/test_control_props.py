"""TradingControl: the effective state is the most restrictive slot and the key never loosens it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from scalper.risk.control import LATCHED, Source, TradingControl
from scalper.risk.intent import TradingState

states = st.sampled_from(list(TradingState))
# One step: a source asks for a state, or the operator's explicit action sets one.
steps = st.lists(
    st.one_of(st.tuples(st.sampled_from(list(Source)), states), st.tuples(st.just("operator_set"), states)),
    max_size=40,
)


def _apply(control: TradingControl, step) -> None:
    who, state = step
    if who == "operator_set":
        control.operator_set(state)
    else:
        control.impose(who, state)


@given(steps)
def test_effective_state_is_the_most_restrictive_slot(seq):
    control = TradingControl()
    for step in seq:
        _apply(control, step)
        assert control.state == max(control.slot(s) for s in Source)


@given(steps, states)
def test_the_key_never_makes_the_state_looser_than_the_other_sources(seq, key_state):
    control = TradingControl()
    for step in seq:
        _apply(control, step)
    others = max(control.slot(s) for s in Source if s is not Source.KEY)
    assert control.impose(Source.KEY, key_state) == max(others, key_state)
    assert control.state >= others


@given(steps, st.sampled_from(sorted(LATCHED, key=lambda s: s.value)), states)
def test_only_the_operator_action_loosens_a_latched_slot(seq, source, state):
    control = TradingControl()
    for step in seq:
        if step[0] != "operator_set":
            before = {s: control.slot(s) for s in LATCHED}
            _apply(control, step)
            assert all(control.slot(s) >= before[s] for s in LATCHED)  # automatic steps never loosen
        else:
            _apply(control, step)
    held = control.slot(source)
    control.impose(source, state)
    assert control.slot(source) == max(held, state)
    control.operator_set(TradingState.ACTIVE)
    assert all(control.slot(s) == TradingState.ACTIVE for s in LATCHED)


@given(steps, states)
def test_journal_and_key_slots_follow_their_source_and_survive_the_operator_action(seq, state):
    control = TradingControl()
    for step in seq:
        _apply(control, step)
    for source in (Source.JOURNAL, Source.KEY):
        control.impose(source, state)
        assert control.slot(source) == state
    journal, key = control.slot(Source.JOURNAL), control.slot(Source.KEY)
    control.operator_set(TradingState.ACTIVE)
    assert (control.slot(Source.JOURNAL), control.slot(Source.KEY)) == (journal, key)
    assert control.state == max(journal, key)
