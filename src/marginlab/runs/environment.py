"""What a run was computed with: versions, device, threads, data location."""

from __future__ import annotations

import os
import platform
import sys
import time

import numpy as np
import torch

import marginlab


def environment(device: torch.device, data_dir: str | os.PathLike | None) -> dict:
    """Return a JSON-ready description of the machine and software of a run.

    Examples
    --------
    >>> environment(torch.device("cpu"), None)["device"]
    'cpu'
    """
    resolved = data_dir or os.environ.get("MARGINLAB_DATA")
    return {
        "marginlab": marginlab.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "data_dir": None if resolved is None else os.path.abspath(resolved),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
