"""One rank of a process job for the comm tests: `python worker.py SUITE` under `kaiyuan launch`
(shm), mpiexec (mpi), or started by hand with the launcher's environment. Prints PASS or the
CommError it was asked to provoke, one JSON line per rank."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402

import checks  # noqa: E402
import kaiyuan.comm as dist  # noqa: E402


def matrix(rank, size, algos, big, big_algos=("ring", "direct")):
    n = 0
    for algo in algos:
        os.environ["KAIYUAN_COMM_ALGO"] = algo
        n += checks.check_collectives(dist, rank, size, [1, 37], [np.float32, ml_dtypes.bfloat16, np.int64, np.uint8])
        if algo in big_algos:
            n += checks.check_collectives(dist, rank, size, [big], [np.float32])
    os.environ.pop("KAIYUAN_COMM_ALGO", None)
    n += checks.check_collectives(dist, rank, size, [3], [np.float16], ops=("AVG", "PROD", "MIN", "MAX"))
    checks.check_async_and_p2p(dist, rank, size)
    checks.check_groups(dist, rank, size)
    return n


def main():
    suite = sys.argv[1]
    timeout = float(os.environ.get("TEST_TIMEOUT", "20"))
    dist.init_process_group(timeout=timeout)
    rank, size = dist.get_rank(), dist.get_world_size()
    result = {"rank": rank, "backend": dist.get_backend()}
    try:
        if suite == "matrix":
            result["checks"] = matrix(rank, size, checks.ALGOS, 1 << 18)
        elif suite == "subset":
            result["checks"] = matrix(rank, size, ("ring", "direct", "halving_doubling"), 50_000)
        elif suite in ("never", "dies"):
            if rank == size - 1:
                if suite == "dies":
                    os._exit(3)
                time.sleep(timeout + 0.5)
            t = time.monotonic()
            dist.all_reduce(np.ones(1000, np.float32))
        result["ok"] = True
    except dist.CommError as e:
        result.update(code=e.code, ranks=e.ranks, reason=e.reason, message=e.message,
                      seconds=time.monotonic() - t)
    print(json.dumps(result), flush=True)
    out_dir = os.environ.get("TEST_RESULT_DIR")  # mpiexec may interleave the ranks' long lines
    if out_dir:
        with open(os.path.join(out_dir, f"rank{result['rank']}.json"), "w") as f:
            json.dump(result, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
