"""Resumable checkpoints: accelerate's full state plus where the data loader stood."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Progress counters: optimizer steps done, the epoch, and batches of it already consumed."""

    global_step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_mrr: float = float("-inf")


class CheckpointManager:
    """``checkpoints/step-N`` folders under the output dir, keeping the newest ``keep``."""

    def __init__(self, output_dir: Path, keep: int) -> None:
        self.root = output_dir / "checkpoints"
        self.keep = max(keep, 1)

    def save(self, accelerator: Accelerator, state: TrainerState) -> Path:
        target = self.root / f"step-{state.global_step}"
        accelerator.save_state(str(target))
        if accelerator.is_main_process:
            (target / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")
            for old in self.all()[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()
        return target

    def all(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        found = [p for p in self.root.glob("step-*") if (p / STATE_FILE).is_file()]
        return sorted(found, key=lambda p: int(p.name.removeprefix("step-")))

    def latest(self) -> Path | None:
        found = self.all()
        return found[-1] if found else None

    @staticmethod
    def load(accelerator: Accelerator, checkpoint: Path) -> TrainerState:
        accelerator.load_state(str(checkpoint))
        return TrainerState(**json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8")))
