"""``gateway.metrics.LockFreeHistogram`` exports what ``prometheus_client.Histogram`` would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from gateway.metrics import FANOUT_BUCKETS, FANOUT_LATENCY, GatewayMetrics

values = st.lists(
    st.one_of(
        st.floats(min_value=0, max_value=5, allow_nan=False),
        st.sampled_from(FANOUT_BUCKETS),  # exactly on a bound: counted in that bucket
    ),
    max_size=200,
)


@given(values)
def test_same_samples_as_prometheus_histogram(observed: list[float]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    metrics = GatewayMetrics(ours)
    reference = Histogram(FANOUT_LATENCY, "reference", buckets=FANOUT_BUCKETS, registry=theirs)
    for value in observed:
        metrics.fanout_latency.observe(value)
        reference.observe(value)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        [family] = [f for f in registry.collect() if f.name == FANOUT_LATENCY]
        return {
            (s.name, s.labels.get("le", "")): s.value
            for s in family.samples
            if not s.name.endswith("_created")
        }

    mine, reference_samples = samples(ours), samples(theirs)
    assert mine.keys() == reference_samples.keys()
    for key, value in reference_samples.items():
        assert abs(mine[key] - value) < 1e-9, key
