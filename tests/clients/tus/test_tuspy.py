"""Photo uploads with a real tuspy (tus-py-client) against a REAL foodcheck server's
/api/v1/uploads (tus 1.0). Run by ../run-tus-tests.sh; or, against a running server:

    FOODCHECK_URL=http://127.0.0.1:8080 .venv/bin/python -m pytest -q

The photos are real JPEGs with EXIF GPS (Tianjin), DateTimeOriginal and Orientation (photo.py).
"""

import base64
import hashlib
import os

import piexif
import pytest
import requests
import tusclient.request
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError
from tusclient.storage.filestorage import FileStorage

import photo as photo_mod

MB = 1024 * 1024
# After a completed upload the record is `uploaded`; the server's photo-processing job (work in
# progress) may already have moved it on to `processed`.
DONE = ("uploaded", "processed")


def endpoint(api):
    return api.base + "/api/v1/uploads"


def tus_for(api, label="a"):
    return tus_client.TusClient(endpoint(api),
                                headers={"Authorization": f"Bearer {api.inspectors[label]['token']}"})


def metadata(record, sha256=None):
    return {"photo_id": record["id"], "sha256": sha256 or record["sha256"], "filename": "IMG_20240315_1030.jpg"}


def head_offset(api, url, label="a"):
    res = requests.head(url, headers={"Tus-Resumable": "1.0.0",
                                      "Authorization": f"Bearer {api.inspectors[label]['token']}"})
    return res.status_code, (int(res.headers["upload-offset"]) if "upload-offset" in res.headers else None)


def assert_uploaded(api, task_id, photo_id):
    assert api.photo_status(task_id, photo_id) in DONE
    assert api.pulled_status(photo_id, "b") in DONE  # the team mate's device sees it on its next pull


@pytest.fixture
def patches(monkeypatch):
    """Records every PATCH tuspy sends: dict(offset, size, checksum, status, data)."""
    sent = []
    real_patch = requests.patch

    def recording_patch(url, data=None, headers=None, **kw):
        res = real_patch(url, data=data, headers=headers, **kw)
        sent.append({"offset": int(headers["upload-offset"]), "size": len(data or b""),
                     "checksum": headers.get("upload-checksum"), "status": res.status_code, "data": data})
        return res

    monkeypatch.setattr(tusclient.request.requests, "patch", recording_patch)
    return sent


def test_photo_fixture_is_a_real_jpeg_with_tianjin_gps(make_photo):
    f = make_photo(4000, 3000)
    with open(f["path"], "rb") as fh:
        assert fh.read(3) == b"\xff\xd8\xff"
    assert f["byte_size"] > 5 * MB
    lat, lng = photo_mod.read_gps(f["path"])
    assert abs(lat - 39.1189) < 1e-4 and abs(lng - 117.1953) < 1e-4
    exif = piexif.load(f["path"])
    assert exif["Exif"][piexif.ExifIFD.DateTimeOriginal].startswith(b"2024:03:15 ")
    assert exif["0th"][piexif.ImageIFD.Orientation] == 6


def test_chunked_upload_with_sha1_upload_checksum(api, make_photo, patches):
    f = make_photo(4000, 3000)
    task_id, (record,) = api.seed_photos([f])
    assert api.photo_status(task_id, record["id"]) == "awaiting_upload"
    uploader = tus_for(api).uploader(f["path"], chunk_size=1 * MB, metadata=metadata(record), upload_checksum=True)
    uploader.upload()
    assert uploader.offset == f["byte_size"]
    assert [p["status"] for p in patches] == [204] * -(-f["byte_size"] // MB)
    assert sum(p["size"] for p in patches) == f["byte_size"]
    for p in patches:  # every chunk carried its own sha1, which the server checked
        assert p["checksum"] == "sha1 " + base64.b64encode(hashlib.sha1(p["data"]).digest()).decode()
    assert_uploaded(api, task_id, record["id"])


def test_corrupted_chunk_is_refused_460_and_tuspy_retry_resends_it(api, make_photo, monkeypatch):
    """The second PATCH's body is damaged in transit (its checksum header is the true one): the
    server answers 460 and keeps the offset; tuspy (retries=1) asks HEAD and sends it again."""
    f = make_photo(2000, 1500)
    task_id, (record,) = api.seed_photos([f])
    log = []
    real_patch = requests.patch

    def damaging_patch(url, data=None, headers=None, **kw):
        body = data
        if len(log) == 1:  # the second PATCH
            body = bytearray(data)
            body[500] ^= 0xFF
            body = bytes(body)
        res = real_patch(url, data=body, headers=headers, **kw)
        log.append((int(headers["upload-offset"]), res.status_code, head_offset(api, url)[1]))
        return res

    monkeypatch.setattr(tusclient.request.requests, "patch", damaging_patch)
    uploader = tus_for(api).uploader(f["path"], chunk_size=256 * 1024, metadata=metadata(record),
                                     upload_checksum=True, retries=1, retry_delay=0)
    uploader.upload()
    assert log[1] == (256 * 1024, 460, 256 * 1024), log  # refused, offset unchanged
    assert log[2] == (256 * 1024, 204, 512 * 1024), log  # the retry sent the same chunk again
    assert_uploaded(api, task_id, record["id"])


def test_resume_with_a_new_uploader_after_an_interrupted_first_attempt(api, make_photo, patches):
    f = make_photo(4000, 3000)
    task_id, (record,) = api.seed_photos([f])
    tus = tus_for(api)
    first = tus.uploader(f["path"], chunk_size=1 * MB, metadata=metadata(record), upload_checksum=True)
    first.upload_chunk()
    first.upload_chunk()
    url = first.url
    assert first.offset == 2 * MB
    assert head_offset(api, url) == (200, 2 * MB)
    del first  # "the app was killed"
    patches.clear()
    assert api.photo_status(task_id, record["id"]) == "awaiting_upload"

    second = tus.uploader(f["path"], url=url, chunk_size=1 * MB, metadata=metadata(record), upload_checksum=True)
    assert second.offset == 2 * MB  # from HEAD
    second.upload()
    assert second.url == url
    assert patches[0]["offset"] == 2 * MB
    assert sum(p["size"] for p in patches) == f["byte_size"] - 2 * MB  # only the rest
    assert all(p["status"] == 204 for p in patches)
    assert_uploaded(api, task_id, record["id"])


def test_resume_through_tuspy_url_storage(api, make_photo, photo_dir, patches):
    """store_url + FileStorage: the second uploader finds the URL by the file's fingerprint."""
    f = make_photo(2000, 1500)
    task_id, (record,) = api.seed_photos([f])
    storage = FileStorage(os.path.join(photo_dir, f"tuspy-urls-{record['id']}.json"))
    tus = tus_for(api)
    first = tus.uploader(f["path"], chunk_size=256 * 1024, metadata=metadata(record),
                         store_url=True, url_storage=storage)
    first.upload_chunk()
    url = first.url
    patches.clear()
    second = tus.uploader(f["path"], chunk_size=256 * 1024, metadata=metadata(record),
                          store_url=True, url_storage=storage)
    assert second.url == url and second.offset == 256 * 1024
    second.upload()
    assert patches[0]["offset"] == 256 * 1024
    assert sum(p["size"] for p in patches) == f["byte_size"] - 256 * 1024
    assert_uploaded(api, task_id, record["id"])


def test_wrong_declared_sha256_is_refused_at_creation(api, make_photo):
    f, other = make_photo(1200, 900), make_photo(1200, 900)
    task_id, (record,) = api.seed_photos([f])
    uploader = tus_for(api).uploader(f["path"], chunk_size=1 * MB, metadata=metadata(record, other["sha256"]))
    with pytest.raises(TusCommunicationError) as e:
        uploader.upload()
    assert e.value.status_code == 409
    assert b"sha256_mismatch" in e.value.response_content
    assert api.photo_status(task_id, record["id"]) == "awaiting_upload"


def test_outsider_gets_404(api, make_photo):
    f = make_photo(1200, 900)
    task_id, (record,) = api.seed_photos([f])
    uploader = tus_for(api, "outsider").uploader(f["path"], chunk_size=1 * MB, metadata=metadata(record))
    with pytest.raises(TusCommunicationError) as e:
        uploader.upload()
    assert e.value.status_code == 404
    assert api.photo_status(task_id, record["id"]) == "awaiting_upload"


def test_same_bytes_for_a_second_record_with_tuspy(api, make_photo):
    f = make_photo(1600, 1200)
    task_id, (one, two) = api.seed_photos([f, f])
    tus = tus_for(api)
    tus.uploader(f["path"], chunk_size=1 * MB, metadata=metadata(one)).upload()
    assert_uploaded(api, task_id, one["id"])
    second = tus.uploader(f["path"], chunk_size=1 * MB, metadata=metadata(two), retries=1, retry_delay=0)
    try:
        second.upload()
    finally:
        # Whatever tuspy says, the server attached the stored content at creation.
        assert_uploaded(api, task_id, two["id"])
    assert second.offset == f["byte_size"]
