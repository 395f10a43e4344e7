import threading
import time

import pytest

import kaiyuan.runtime as ky
from kaiyuan.runtime.errors import DeviceError, MemoryAccessError


def test_default_stream_runs_at_once_in_caller_thread():
    s = ky.current_stream()
    assert s.is_default
    seen = []
    s.submit(lambda: seen.append(threading.current_thread()))
    assert seen == [threading.current_thread()]


def test_user_stream_runs_in_submit_order_on_another_thread():
    s = ky.Stream()
    order, threads = [], set()
    for i in range(50):
        s.submit(lambda i=i: (time.sleep(0.001 * (i % 3)), order.append(i), threads.add(threading.current_thread())))
    s.synchronize()
    assert order == list(range(50))
    assert threading.current_thread() not in threads
    assert s.query()


def test_async_error_is_reraised_at_synchronize_as_is():
    s = ky.Stream()
    err = MemoryAccessError("out of bounds", hint="check the mask")

    def boom():
        raise err

    s.submit(boom)
    with pytest.raises(MemoryAccessError) as e:
        s.synchronize()
    assert e.value is err
    s.synchronize()  # reported once


def test_foreign_async_error_becomes_device_error_at_next_submit():
    s = ky.Stream()
    s.submit(lambda: 1 / 0)
    time.sleep(0.05)
    with pytest.raises(DeviceError) as e:
        s.submit(lambda: None)
    assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_stream_context_makes_stream_current():
    s = ky.Stream()
    with ky.stream(s):
        assert ky.current_stream() is s
        assert ky.current_stream("fakedev").is_default  # per device
    assert ky.current_stream().is_default


def test_event_elapsed_time_positive_and_ordered():
    s = ky.Stream()
    a, b, c = (ky.Event(enable_timing=True) for _ in range(3))
    a.record(s)
    s.submit(lambda: time.sleep(0.02))
    b.record(s)
    s.submit(lambda: time.sleep(0.01))
    c.record(s)
    c.synchronize()
    assert a.query() and b.query() and c.query()
    ab, ac = a.elapsed_time(b), a.elapsed_time(c)
    assert 15 <= ab < ac
    assert b.elapsed_time(c) > 0


def test_elapsed_time_errors():
    plain, timed = ky.Event(), ky.Event(enable_timing=True)
    plain.record()
    with pytest.raises(DeviceError, match="enable_timing"):
        plain.elapsed_time(plain)
    with pytest.raises(DeviceError, match="not recorded"):
        timed.elapsed_time(timed)


def test_event_on_default_stream_completes_immediately():
    e = ky.Event(enable_timing=True)
    e.record()
    assert e.query()


def test_wait_event_across_two_streams():
    producer, consumer = ky.Stream(), ky.Stream()
    log, gate = [], threading.Event()
    producer.submit(lambda: gate.wait(5))
    producer.submit(lambda: log.append("produced"))
    ready = ky.Event()
    ready.record(producer)
    consumer.wait_event(ready)
    consumer.submit(lambda: log.append("consumed"))
    time.sleep(0.05)
    assert log == [] and not ready.query() and not consumer.query()
    gate.set()
    consumer.synchronize()
    assert log == ["produced", "consumed"]


def test_device_synchronize_waits_for_every_stream():
    streams = [ky.Stream() for _ in range(3)]
    done = []
    for i, s in enumerate(streams):
        s.submit(lambda i=i: (time.sleep(0.02), done.append(i)))
    ky.synchronize()
    assert sorted(done) == [0, 1, 2]


def test_synchronize_times_out_instead_of_hanging(monkeypatch):
    monkeypatch.setenv("KAIYUAN_SYNC_TIMEOUT", "0.1")
    s, gate = ky.Stream(), threading.Event()
    s.submit(lambda: gate.wait(5))
    with pytest.raises(DeviceError, match="timed out"):
        s.synchronize()
    gate.set()
