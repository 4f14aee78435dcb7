import itertools

import pytest

from usvid.data.samplers import TrainingSampler


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_training_sampler_is_an_endless_sequence_of_permutations():
    indices = _take(TrainingSampler(6, seed=1), 18)
    for epoch in range(3):
        assert sorted(indices[6 * epoch : 6 * (epoch + 1)]) == list(range(6))
    assert indices[:6] != indices[6:12]  # a fresh permutation each pass
    assert _take(TrainingSampler(4, shuffle=False, seed=0), 6) == [0, 1, 2, 3, 0, 1]


def test_training_sampler_state_resumes_the_exact_stream():
    reference = _take(TrainingSampler(5, seed=3), 23)
    first = TrainingSampler(5, seed=3)
    assert _take(first, 9) == reference[:9]
    state = first.state_dict()
    assert state == {"seed": 3, "size": 5, "global_position": 9}

    resumed = TrainingSampler(5, seed=99)
    resumed.load_state_dict(state)
    assert _take(resumed, 14) == reference[9:]
    assert _take(first, 14) == reference[9:]  # a new iterator continues too (rebuilt loader)


def test_training_sampler_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive integer dataset size, got 0"):
        TrainingSampler(0)
