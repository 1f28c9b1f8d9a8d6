"""The seed's ``Publisher`` and ``Subscriber``, as a user would write them.

They live in an importable module (not in the script) because process agents are
started in fresh interpreters that import their class by name.
"""

from __future__ import annotations

from pathlib import Path

from pyorchestrate.core.agent import LoopingThreadAgent, PeriodicProcessAgent


class Publisher(PeriodicProcessAgent):
    """Writes a numbered line to ``output_file`` every ``execution_interval`` seconds."""

    class Config(PeriodicProcessAgent.Config):
        output_file: str = "out.txt"
        execution_interval: float = 0.1
        limit: int = 5

    def setup(self) -> None:
        Path(self.config.output_file).write_text("")
        super().setup()

    def runner(self) -> None:
        with Path(self.config.output_file).open("a") as out:
            out.write(f"{self.name}: message {self.cycles_done + 1}\n")


class Subscriber(LoopingThreadAgent):
    """Follows ``input_file`` and prints each new line until ``expected`` lines arrived."""

    class Config(LoopingThreadAgent.Config):
        input_file: str = "out.txt"
        expected: int = 5
        timeout: float = 10.0

    received: int = 0
    waited: float = 0.0

    def cycle(self) -> None:
        path = Path(self.config.input_file)
        lines = path.read_text().splitlines() if path.exists() else []
        for line in lines[self.received :]:
            print(f"{self.name} got: {line}", flush=True)
        self.received = max(self.received, len(lines))
        if self.received >= self.config.expected or self.waited >= self.config.timeout:
            self.stop()
            return
        self.waited += 0.05
        self.wait(0.05)
