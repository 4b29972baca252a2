"""One frame's full dissection tree, read on demand through pyshark's public ``FileCapture``.

``dissect_frame`` is blocking (tshark runs for the whole file up to the frame): call it from a
worker thread; the capture is built and closed inside the call. The TUI's detail view shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DissectedLayer:
    name: str
    fields: list[str] = field(default_factory=list)


def dissect_frame(path: str, frame: int) -> list[DissectedLayer]:
    """Every layer and field of frame ``frame`` of the capture at ``path`` (PDML showname text).

    Raises LookupError when the frame is not in the file."""
    import pyshark

    cap = pyshark.FileCapture(path, display_filter=f"frame.number=={int(frame)}", keep_packets=False)
    try:
        packet = next(iter(cap), None)
        if packet is None:
            raise LookupError(f"frame {frame} not found in {path}")
        layers = []
        info = getattr(packet, "frame_info", None)  # pyshark keeps the frame layer apart
        for layer in ([info] if info is not None and info not in packet.layers else []) + list(packet.layers):
            lines = []
            for name in layer.field_names:
                container = layer.get_field(name)
                for f in getattr(container, "all_fields", [container]):
                    if getattr(f, "hide", None):
                        continue
                    text = getattr(f, "showname", None) or getattr(f, "show", None)
                    if text:
                        lines.append(str(text))
            layers.append(DissectedLayer(layer.layer_name.upper(), lines))
        return layers
    finally:
        cap.close()
