"""Creating a job: `cp NAME.jsonl MOUNT/jobs/` checks the input as a
whole, cuts it at line ends into parts of at most -o part_size bytes and
-o part_requests requests, uploads each as NAME.part-000i-of-000n.jsonl and
makes it a batch tagged with the job's keys; the close says whether every
part was made. Bad input, a name in use and a full account send nothing."""

import pytest


@pytest.mark.parametrize("option,value,message", [
    ("part_size", "0", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_size", "101M", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_size", "1k", "part_size must be a number of bytes from 1 to 100M, "
     "digits with an optional K, M or G"),
    ("part_requests", "0", "part_requests must be a whole number from 1 to 50000"),
    ("part_requests", "50001", "part_requests must be a whole number from 1 to 50000"),
    ("part_requests", "5x", "part_requests must be a whole number from 1 to 50000"),
])
def test_a_bad_part_option_is_refused_before_any_request(sim, mount, option, value,
                                                          message):
    m = mount(options=["%s=%s" % (option, value)], wait=False)
    assert m.wait_exit() != 0
    assert m.stderr_text().strip().splitlines() == ["kimifs: " + message]
    assert sim.log() == []
