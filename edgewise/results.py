"""Base class for result objects: JSON + .npy on disk, HTML in a notebook."""

from __future__ import annotations

import html
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ._png import png_data_uri

__all__ = ["Result", "to_jsonable", "write_atomic", "write_json", "write_npy"]

def to_jsonable(obj):
    """Plain JSON types; non-finite floats become strings ("inf", "-inf", "nan")."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else str(f)
    return obj

def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

def write_json(path: Path, doc) -> Path:
    """Atomically write ``doc`` (made JSON-safe) as indented JSON."""
    write_atomic(path, (json.dumps(to_jsonable(doc), indent=1) + "\n").encode())
    return Path(path)


def write_npy(path: Path, array) -> Path:
    """Atomically write ``array`` as a .npy file (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_atomic(path, buf.getvalue())
    return Path(path)


class Result:
    """Mixin for result dataclasses: subclasses define ``kind``, ``to_dict()`` and ``arrays()``."""

    kind = "result"

    def to_dict(self) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def to_json(self, **kw) -> str:
        return json.dumps(to_jsonable(self.to_dict()), **kw)

    def save(self, directory, stem: str | None = None) -> list[Path]:
        """Write ``<stem>.json`` and one ``<stem>.<array>.npy`` per array into ``directory``."""
        directory, stem = Path(directory), stem or self.kind
        paths = [write_json(directory / f"{stem}.json", self.to_dict())]
        for name, arr in self.arrays().items():
            paths.append(write_npy(directory / f"{stem}.{name}.npy", arr))
        return paths

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.to_dict().items() if not isinstance(v, (list, dict))
        )
        img = png_data_uri(self)  # drawn by edgewise.report (plotting lives only there), imported by name
        pic = f'<img src="{img}" style="max-width:480px"/>' if img else ""
        return f"<div><b>{html.escape(type(self).__name__)}</b>{pic}<table>{rows}</table></div>"

def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, int) and abs(v) > 10**15:
        return f"{v:.6e}"
    return str(v)
