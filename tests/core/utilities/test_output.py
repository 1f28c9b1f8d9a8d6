"""OutputCapture against real processes and real files: lines stored with timestamps,
bounded however they come (a 10 MB line, binary noise), files rotated and reopened, a
directory that cannot be written refused at open, and every descriptor and thread
closed."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyorchestrate.core.utilities.output import (
    MAX_LINE_BYTES,
    READ_SIZE,
    AgentOutput,
    OutputCapture,
    OutputSettings,
)
from pyorchestrate.core.utilities.outputfiles import (
    LogFile,
    format_stamp,
    log_files,
    log_path,
    parse_line,
)

NOW = 1_796_319_601.123  # 2026-12-03T17:40:01.123Z
STAMP = "2026-12-03T17:40:01.123Z"


def _fds() -> set[str]:
    return {path.name for path in Path("/proc/self/fd").iterdir()}


@pytest.fixture
def fds_closed() -> Iterator[None]:
    """Fail if the test leaves a descriptor open."""
    before = _fds()
    yield
    left = {fd: str(Path("/proc/self/fd", fd).readlink()) for fd in _fds() - before}
    assert left == {}


def _capture(logs_dir: Path | None, **settings: int) -> OutputCapture:
    return OutputCapture(
        "test",
        settings=OutputSettings(logs_dir=logs_dir, **settings),
        wall=lambda: NOW,
    )


def _run(output: AgentOutput, command: str) -> None:
    """Run ``command`` in ``sh`` with the captured stdout and stderr; wait for both
    pipes' end."""
    process = subprocess.Popen(
        ["sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=output.stdout_fd,
        stderr=output.stderr_fd,
    )
    output.close_writers()
    assert process.wait(60) == 0
    assert output.wait(60)


def _texts(path: Path) -> list[str]:
    stored = path.read_bytes().decode("utf-8").split("\n")
    assert stored.pop() == ""  # each line ends with a newline
    lines = [parse_line(line) for line in stored]
    assert all(line is not None for line in lines), path.read_text()[:500]
    return [line.text for line in lines if line is not None]


def test_each_stream_goes_to_its_file_each_line_stamped(
    tmp_path: Path, fds_closed: None
) -> None:
    capture = _capture(tmp_path / "logs")
    try:
        output = capture.open("job")
        assert output is not None
        _run(output, "echo one; echo two >&2; printf 'three\\r\\nno end'")
    finally:
        assert capture.close()
    stdout = log_path(tmp_path / "logs", "job", "stdout")
    assert output.files == {
        "stdout": stdout,
        "stderr": log_path(tmp_path / "logs", "job", "stderr"),
    }
    assert stdout.read_bytes().decode() == (
        f"{STAMP} one\n{STAMP} three\n{STAMP} no end\n"
    )
    assert _texts(output.files["stderr"]) == ["two"]
    assert sorted(output.tail.lines()) == ["no end", "one", "three", "two"]
    assert output.tail.total_lines == 4
    assert oct(stdout.stat().st_mode & 0o777) == "0o600"
    assert capture.log_files("job") == output.files


def test_with_logs_off_lines_go_to_the_sinks_after_the_agents_name(
    fds_closed: None,
) -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    capture = OutputCapture("test", stdout_sink=out_w, stderr_sink=err_w)
    try:
        output = capture.open("job")
        assert output is not None
        assert output.files == {}
        _run(output, "echo one; echo two >&2; printf 'a\\nb'")
    finally:
        assert capture.close()
        os.close(out_w)
        os.close(err_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        assert out.read() == b"[job] one\n[job] a\n[job] b\n"
        assert err.read() == b"[job] two\n"


def test_the_line_hook_sees_every_line(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    capture = _capture(tmp_path)
    try:
        output = capture.open("job", on_line=lambda s, t: seen.append((s, t)))
        assert output is not None
        _run(output, "echo a; echo b; echo c >&2")
    finally:
        capture.close()
    assert [t for s, t in seen if s == "stdout"] == ["a", "b"]
    assert [t for s, t in seen if s == "stderr"] == ["c"]


def test_a_10_mb_line_without_newline_is_cut_not_held_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fds_closed: None
) -> None:
    assert READ_SIZE <= MAX_LINE_BYTES
    size = 10_000_000
    capture = _capture(tmp_path, log_max_bytes=0)
    tracemalloc.start()
    try:
        output = capture.open("job")
        assert output is not None
        with caplog.at_level(logging.WARNING, "pyorchestrate.output"):
            _run(output, f"head -c {size} /dev/zero | tr '\\0' x")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        capture.close()
    # Never the whole line in memory: a few reads' worth at most.
    assert peak < 2_000_000, peak
    texts = _texts(output.files["stdout"])
    assert {len(text) for text in texts[:-1]} == {MAX_LINE_BYTES}
    assert sum(map(len, texts)) == size
    assert output.streams["stdout"].cut_lines == size // MAX_LINE_BYTES
    said = [r for r in caplog.records if "longer than" in r.getMessage()]
    assert len(said) == 1
    assert output.tail.text().endswith("x" * 1000)


def test_binary_output_is_stored_as_valid_utf8_lines(tmp_path: Path) -> None:
    capture = _capture(tmp_path)
    try:
        output = capture.open("job")
        assert output is not None
        _run(output, "head -c 300000 /dev/urandom")
    finally:
        capture.close()
    texts = _texts(output.files["stdout"])  # strict UTF-8, every line parsed
    assert any("\ufffd" in text for text in texts)
    assert "\ufffd" in output.tail.text()


def test_a_directory_that_cannot_be_written_is_refused_at_open(
    tmp_path: Path, fds_closed: None
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    capture = _capture(blocker / "logs")
    try:
        with pytest.raises(OSError, match="Not a directory") as raised:
            capture.open("job")
        assert str(blocker / "logs" / "job.stdout.log") in str(raised.value)
        (blocker.parent / "dir.stdout.log").mkdir()
        capture.settings = OutputSettings(logs_dir=blocker.parent)
        with pytest.raises(OSError) as raised:
            capture.open("dir")
        assert str(raised.value) == (
            f"[Errno 21] cannot write its stdout to {blocker.parent}/dir.stdout.log "
            "(Is a directory)"
        )
    finally:
        assert capture.close()


def test_files_rotate_by_size_keeping_the_newest_backups(tmp_path: Path) -> None:
    path = tmp_path / "job.stdout.log"
    file = LogFile(path, max_bytes=100, backups=2)
    try:
        for index in range(40):
            file.write(f"{format_stamp(NOW)} line {index:02d}\n".encode())
    finally:
        file.close()
    files = log_files(tmp_path, "job", "stdout")
    assert [p.name for p in files] == [
        "job.stdout.log.2",
        "job.stdout.log.1",
        "job.stdout.log",
    ]
    assert all(p.stat().st_size <= 100 for p in files)
    texts = [text for p in files for text in _texts(p)]
    # In order, the newest last, nothing missing from the oldest kept on.
    first = int(texts[0].split()[-1])
    assert texts == [f"line {index:02d}" for index in range(first, 40)]


def test_with_no_backups_the_file_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "job.stderr.log"
    file = LogFile(path, max_bytes=100, backups=0)
    try:
        for index in range(40):
            file.write(f"{format_stamp(NOW)} line {index:02d}\n".encode())
    finally:
        file.close()
    assert log_files(tmp_path, "job", "stderr") == [path]
    assert path.stat().st_size <= 100
    assert _texts(path)[-1] == "line 39"


def test_reopen_writes_to_a_new_file_at_the_path(
    tmp_path: Path, fds_closed: None
) -> None:
    capture = _capture(tmp_path)
    try:
        output = capture.open("job")
        assert output is not None
        process = subprocess.Popen(
            ["sh", "-c", "echo one; read line; echo two"],
            stdin=subprocess.PIPE,
            stdout=output.stdout_fd,
            stderr=output.stderr_fd,
        )
        output.close_writers()
        path = output.files["stdout"]
        deadline = time.monotonic() + 30
        while "one" not in path.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        path.rename(tmp_path / "rotated-by-logrotate")
        result = capture.reopen_logs()
        assert sorted(result.reopened) == sorted(output.files.values())
        assert result.failed == ()
        process.communicate(b"go\n", timeout=60)
        assert process.returncode == 0
        assert output.wait(60)
    finally:
        capture.close()
    assert _texts(tmp_path / "rotated-by-logrotate") == ["one"]
    assert _texts(path) == ["two"]


def test_parse_line_refuses_lines_not_in_the_format() -> None:
    line = parse_line(f"{STAMP} hello world\n")
    assert line is not None
    assert line.text == "hello world"
    assert line.timestamp.isoformat() == "2026-12-03T17:40:01.123000+00:00"
    assert parse_line(f"{STAMP} ") is not None
    for bad in ("", "hello", f"{STAMP}x", STAMP, "2026-12-03 17:40:01.123Z x"):
        assert parse_line(bad) is None, bad


def test_agent_names_that_are_not_file_names_stay_inside_the_directory(
    tmp_path: Path,
) -> None:
    assert log_path(tmp_path, "a/../b", "stdout").parent == tmp_path
    assert log_path(tmp_path, "..", "stderr").name == "%2E..stderr.log"
    assert log_path(tmp_path, "50%", "stdout").name == "50%25.stdout.log"
    with pytest.raises(ValueError, match="stream"):
        log_path(tmp_path, "job", "both")  # type: ignore[arg-type]


def test_a_closed_file_is_not_reopened_nor_written(
    tmp_path: Path, fds_closed: None
) -> None:
    """reopen_logs() may race with the end of a stream: the reader closes the file
    between the moment reopen_logs() listed it and its reopen()."""
    path = tmp_path / "job.stdout.log"
    file = LogFile(path, max_bytes=0, backups=0)
    file.write(b"x\n")
    file.close()
    path.unlink()
    assert file.reopen() is None
    file.write(b"y\n")
    assert not path.exists()
    assert file.dropped_bytes == 2
    file.close()


def test_a_full_disk_drops_counts_and_says_so_once(
    caplog: pytest.LogCaptureFixture, fds_closed: None
) -> None:
    file = LogFile(Path("/dev/full"), max_bytes=0, backups=0)  # ENOSPC on write
    try:
        with caplog.at_level(logging.WARNING, "pyorchestrate.output"):
            for _ in range(3):
                file.write(b"a line\n")
    finally:
        file.close()
    assert file.dropped_bytes == 3 * len(b"a line\n")
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "No space left on device" in said[0], said


def test_rotated_files_are_found_for_names_with_glob_characters(
    tmp_path: Path,
) -> None:
    name = "job [1]*?"
    file = LogFile(log_path(tmp_path, name, "stdout"), max_bytes=30, backups=3)
    try:
        for index in range(3):
            file.write(f"{STAMP} {index}\n".encode())
    finally:
        file.close()
    (tmp_path / "job 1x.stdout.log.1").write_text("another agent's file\n")
    files = log_files(tmp_path, name, "stdout")
    assert [p.name for p in files] == [
        "job [1]*?.stdout.log.2",
        "job [1]*?.stdout.log.1",
        "job [1]*?.stdout.log",
    ]
    assert [text for p in files for text in _texts(p)] == ["0", "1", "2"]
