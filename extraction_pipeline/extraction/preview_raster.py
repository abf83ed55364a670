"""A recorded ezdxf drawing rasterised with Pillow: the DXF preview without a PDF in between.

ezdxf's drawing add-on records what a layout draws (``Recorder``: lines, paths, filled paths,
points, each with a colour and a line weight). Its PyMuPDF backend replays that through PyMuPDF's
Python drawing API, several microseconds per point: 10 s for a plan of 3,000 entities with text.
Here each record is flattened to polylines (numpy) and drawn by Pillow's C code instead (a
``PointsRecord`` of three or more points is a filled polygon: a SOLID, a TRACE), fitted
into ``size`` pixels, y up, on white. Filled areas with several boundaries (a glyph's counter, a
hatch's island) are filled even-odd, on a mask the size of the area.
"""

from __future__ import annotations

from typing import Any

MARGIN_PX = 4
# Drawn this many times larger, then scaled down: thin lines and small text come out anti-aliased.
SUPERSAMPLE = 2


def render_recording(player: Any, size: int) -> bytes:
    """The PNG of an ezdxf ``Player``'s records, its longest side ``size`` pixels. Every line is one
    pixel wide (a thumbnail shows the geometry, not the pen widths)."""
    import io

    from ezdxf.addons.drawing import recorder
    from PIL import Image, ImageChops, ImageDraw

    box = player.bbox()
    if not box.has_data:
        raise ValueError("the drawing records nothing")
    width, height = box.size.x, box.size.y
    longest = max(width, height)
    margin = MARGIN_PX * SUPERSAMPLE
    inner = size * SUPERSAMPLE - 2 * margin
    scale = inner / longest if longest > 0 else 1.0
    pixels = (round(width * scale) + 2 * margin, round(height * scale) + 2 * margin)
    left, top = box.extmin.x, box.extmax.y
    # A curve is flattened to segments no further than half a pixel from it.
    tolerance = 0.5 / scale

    def to_pixels(points: Any) -> list[tuple[float, float]]:
        return [((x - left) * scale + margin, (top - y) * scale + margin) for x, y in points]

    def flat(path: Any) -> list[tuple[float, float]]:
        if path.has_curves:
            return to_pixels((vertex.x, vertex.y) for vertex in path.flattening(tolerance))
        return to_pixels(path.np_vertices().tolist())

    image = Image.new("RGB", pixels, "white")
    draw = ImageDraw.Draw(image)
    for record, properties in player.recordings():
        colour = properties.color[:7]
        line_px = SUPERSAMPLE
        if isinstance(record, recorder.SolidLinesRecord):
            points = to_pixels(record.lines.np_vertices().tolist())
            for start in range(0, len(points) - 1, 2):
                draw.line((points[start], points[start + 1]), fill=colour, width=line_px)
        elif isinstance(record, recorder.PathRecord):
            for sub in record.path.sub_paths():
                points = flat(sub)
                if len(points) > 1:
                    draw.line(points, fill=colour, width=line_px)
        elif isinstance(record, recorder.FilledPathsRecord):
            outlines = [
                points for path in record.paths for sub in path.sub_paths() if len(points := flat(sub)) > 2
            ]
            if len(outlines) == 1:
                draw.polygon(outlines[0], fill=colour)
            elif outlines:
                xs = [x for points in outlines for x, _ in points]
                ys = [y for points in outlines for _, y in points]
                x0, y0 = max(0, int(min(xs))), max(0, int(min(ys)))
                x1, y1 = min(pixels[0], int(max(xs)) + 2), min(pixels[1], int(max(ys)) + 2)
                if x1 <= x0 or y1 <= y0:
                    continue
                mask = Image.new("1", (x1 - x0, y1 - y0), 0)
                for points in outlines:  # even-odd: each boundary flips what it encloses
                    one = Image.new("1", mask.size, 0)
                    ImageDraw.Draw(one).polygon([(x - x0, y - y0) for x, y in points], fill=1)
                    mask = ImageChops.logical_xor(mask, one)
                image.paste(colour, (x0, y0, x1, y1), mask)
        elif isinstance(record, recorder.PointsRecord):  # a point, or a filled polygon (SOLID, TRACE)
            points = to_pixels(record.points.np_vertices().tolist())
            if len(points) > 2:
                draw.polygon(points, fill=colour)
            elif len(points) == 2:
                draw.line(points, fill=colour, width=SUPERSAMPLE)
            elif points:
                x, y = points[0]
                draw.rectangle((x, y, x + SUPERSAMPLE - 1, y + SUPERSAMPLE - 1), fill=colour)
        elif isinstance(record, recorder.ImageRecord):
            outline = to_pixels(record.boundary.np_vertices().tolist())
            if len(outline) > 1:
                draw.line([*outline, outline[0]], fill=colour, width=1)
    final = (max(1, round(pixels[0] / SUPERSAMPLE)), max(1, round(pixels[1] / SUPERSAMPLE)))
    out = io.BytesIO()
    image.resize(final, Image.Resampling.BOX).save(out, format="PNG")
    return out.getvalue()
