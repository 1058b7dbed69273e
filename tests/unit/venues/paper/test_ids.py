import os
import re
import uuid

from trademk.venues.paper.ids import UuidIds

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_ids_are_version_4_uuids_and_unique_across_pool_refills() -> None:
    ids = UuidIds()
    made = [ids() for _ in range(2_000)]  # several 256-id pools
    assert all(UUID4.match(value) for value in made)
    assert all(uuid.UUID(value).version == 4 for value in made)
    assert len(set(made)) == len(made)


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    ids = UuidIds()
    ids()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the next id, then exit at once
        os.write(write, ids().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_id != ids()
