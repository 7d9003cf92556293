"""Real JPEG photos with real EXIF (GPS for Tianjin, DateTimeOriginal, Orientation), made with
Pillow + piexif. Every call makes different bytes (fresh noise), so no two photos of a run, or of
two runs against one long-lived server, share a sha256 (the server stores content only once and
would complete a second upload of the same bytes at creation).

As a module:  make_jpeg(path, width=4000, height=3000, ...) -> dict(path, sha256, byte_size, ...)
As a script:  python photo.py OUT.jpg [--width 4000 --height 3000 --quality 92]
              prints the same dict as JSON (the Node tests call it this way).
"""

import argparse
import hashlib
import io
import json
import os
import random
import sys
from datetime import datetime, timezone

import piexif
from PIL import Image

# 天津市和平区 (Heping District, Tianjin), WGS-84 as a phone's GPS writes it.
TIANJIN_LAT = 39.1189
TIANJIN_LNG = 117.1953


def _rational(value, denominator):
    return (int(round(value * denominator)), denominator)


def _dms(deg):
    """Decimal degrees → EXIF ((d,1),(m,1),(s*10000,10000))."""
    deg = abs(deg)
    d = int(deg)
    m_full = (deg - d) * 60
    m = int(m_full)
    s = (m_full - m) * 60
    return ((d, 1), (m, 1), _rational(s, 10000))


def exif_bytes(lat, lng, taken, orientation, width, height):
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S").encode()
    zeroth = {
        piexif.ImageIFD.Make: b"Xiaomi",
        piexif.ImageIFD.Model: b"Redmi Note 12 (foodcheck tus harness)",
        piexif.ImageIFD.Orientation: orientation,
        piexif.ImageIFD.DateTime: stamp,
        piexif.ImageIFD.Software: b"foodcheck-tests photo.py",
    }
    exif = {
        piexif.ExifIFD.DateTimeOriginal: stamp,
        piexif.ExifIFD.DateTimeDigitized: stamp,
        piexif.ExifIFD.OffsetTimeOriginal: b"+08:00",
        piexif.ExifIFD.PixelXDimension: width,
        piexif.ExifIFD.PixelYDimension: height,
    }
    gps = {
        piexif.GPSIFD.GPSVersionID: (2, 3, 0, 0),
        piexif.GPSIFD.GPSLatitudeRef: b"N" if lat >= 0 else b"S",
        piexif.GPSIFD.GPSLatitude: _dms(lat),
        piexif.GPSIFD.GPSLongitudeRef: b"E" if lng >= 0 else b"W",
        piexif.GPSIFD.GPSLongitude: _dms(lng),
        piexif.GPSIFD.GPSAltitudeRef: 0,
        piexif.GPSIFD.GPSAltitude: (5, 1),
        piexif.GPSIFD.GPSMapDatum: b"WGS-84",
        piexif.GPSIFD.GPSDateStamp: taken.astimezone(timezone.utc).strftime("%Y:%m:%d").encode(),
    }
    return piexif.dump({"0th": zeroth, "Exif": exif, "GPS": gps, "1st": {}, "thumbnail": None})


def make_jpeg(path, width=4000, height=3000, quality=92, lat=TIANJIN_LAT, lng=TIANJIN_LNG,
              orientation=6, taken=None, seed=None):
    """Writes a noise photo (coarse colour blotches + fine grain, so it compresses like a real
    photo: several MB at 4000×3000) and returns its facts."""
    rng = random.Random(seed if seed is not None else os.urandom(16))
    taken = taken or datetime(2024, 3, 15, 10, rng.randrange(60), rng.randrange(60),
                              tzinfo=datetime.now().astimezone().tzinfo)
    # Coarse colour field, scaled up smoothly.
    cw, ch = max(1, width // 16), max(1, height // 16)
    img = Image.frombytes("RGB", (cw, ch), rng.randbytes(cw * ch * 3)).resize(
        (width, height), Image.BICUBIC)
    # Fine grain (sensor noise), blended in.
    grain = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    img = Image.blend(img, grain, 0.18)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality,
             exif=exif_bytes(lat, lng, taken, orientation, width, height))
    data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    return {
        "path": os.path.abspath(path),
        "sha256": hashlib.sha256(data).hexdigest(),
        "byte_size": len(data),
        "width": width,
        "height": height,
        "lat": lat,
        "lng": lng,
        "taken_at": int(taken.timestamp() * 1000),
    }


def read_gps(path):
    """(lat, lng) in decimal degrees from the file's EXIF."""
    gps = piexif.load(path)["GPS"]

    def deg(v, ref):
        d, m, s = (a / b for a, b in v)
        x = d + m / 60 + s / 3600
        return -x if ref in (b"S", b"W") else x

    return (deg(gps[piexif.GPSIFD.GPSLatitude], gps[piexif.GPSIFD.GPSLatitudeRef]),
            deg(gps[piexif.GPSIFD.GPSLongitude], gps[piexif.GPSIFD.GPSLongitudeRef]))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--width", type=int, default=4000)
    p.add_argument("--height", type=int, default=3000)
    p.add_argument("--quality", type=int, default=92)
    a = p.parse_args()
    json.dump(make_jpeg(a.out, a.width, a.height, a.quality), sys.stdout)
    print()
