"""pytest fixtures for test_tuspy.py: a REAL foodcheck server (FOODCHECK_URL), arranged through
its public API only, as real-server.js does for the Node tests: the run's inspectors a, b (the
team) and outsider, a task per test, an inspection and its photo records synced by inspector a.

Without FOODCHECK_URL every test is skipped (the run script treats "no tests ran" as failure).
"""

import hashlib
import os
import random
import shutil
import tempfile
import uuid

import pytest
import requests

import photo as photo_mod

TEMPLATE_ID = "00000000-0000-4000-8000-000000002016"
SCHEMA_VERSION = 2
BASE_URL = (os.environ.get("FOODCHECK_URL") or "").rstrip("/")


class Api:
    def __init__(self, base_url, admin_username, admin_password):
        self.base = base_url
        self.run = uuid.uuid4().hex[:8]
        self.seq = 0
        self.http = requests.Session()
        self.admin = self.login(admin_username, admin_password, f"tuspy-admin-{self.run}")
        self.inspectors = {}
        for label, name in (("a", "张三"), ("b", "李四"), ("outsider", "王五")):
            username, password = f"tuspy-{self.run}-{label}", f"pw-{uuid.uuid4()}"
            user = self.call("POST", "/api/v1/users", {
                "username": username, "password": password, "role": "inspector",
                "name": f"{name}-{self.run}", "badge_no": f"PY{self.run}{label[:3].upper()}",
            }, expect=201)
            self.inspectors[label] = {
                "id": user["id"],
                "token": self.login(username, password, f"tuspy-{label}-{self.run}"),
            }

    def call(self, method, path, body=None, token=None, expect=None):
        res = self.http.request(method, self.base + path, json=body,
                                headers={"authorization": f"Bearer {token or self.admin}"})
        ok = res.status_code == expect if expect is not None else res.ok
        assert ok, f"{method} {path} → {res.status_code} {res.text[:500]}"
        return res.json() if res.content else None

    def login(self, username, password, device_id):
        res = self.http.post(self.base + "/api/v1/auth/login",
                             json={"username": username, "password": password, "device_id": device_id})
        assert res.ok, f"login {username} → {res.status_code} {res.text}"
        return res.json()["access_token"]

    def seed_task(self):
        self.seq += 1
        n, town = self.seq, f"tuspy街道-{self.run}-{self.seq}"
        est = self.call("POST", "/api/v1/establishments", {
            "sign_name": f"狗不理分店 {self.run}-{n}",
            "licensed_name": f"天津市河西区某餐饮店（个体工商户）{self.run}-{n}",
            "license_no": "JY2" + "".join(random.choice("0123456789") for _ in range(13)),
            "category": "small_restaurant", "address": f"河西区友谊路 {n} 号", "town": town, "risk_grade": "C",
        }, expect=201)
        plan = self.call("POST", "/api/v1/plans", {
            "name": f"tuspy harness {self.run}-{n}", "round_title": f"照片上传测试 tuspy {self.run}-{n}",
            "theme": "餐饮具清洗消毒", "period_start": "2024-03-01", "period_end": "2024-03-31",
            "due_date": "2099-03-31", "template_id": TEMPLATE_ID, "template_version": 1,
            "filter": {"towns": [town]}, "quotas": {"explicit": {"C": 1}},
            "inspector_ids": [self.inspectors["a"]["id"], self.inspectors["b"]["id"]], "team_size": 2,
        }, expect=201)
        self.call("POST", f"/api/v1/plans/{plan['id']}/draw", {"seed": f"tuspy-{uuid.uuid4()}"}, expect=201)
        tasks = self.call("GET", f"/api/v1/tasks?plan_id={plan['id']}")["items"]
        assert len(tasks) == 1
        return tasks[0]["id"], est["id"]

    def seed_photos(self, files):
        """A task, an inspection by inspector a, one synced photo record per file (dict from
        photo.make_jpeg, or raw bytes). Returns (task_id, [record, ...])."""
        task_id, est_id = self.seed_task()
        token = self.inspectors["a"]["token"]
        iid = str(uuid.uuid4())
        now = 1_710_469_800_000
        records = []
        for f in files:
            if isinstance(f, (bytes, bytearray)):
                sha, size, taken = hashlib.sha256(f).hexdigest(), len(f), now
            else:
                sha, size, taken = f["sha256"], f["byte_size"], f["taken_at"]
            records.append({"id": str(uuid.uuid4()), "inspection_id": iid, "item_code": "4.1",
                            "sha256": sha, "byte_size": size, "taken_at": taken})
        pull = self.call("GET", f"/api/v1/sync?last_pulled_at=null&schema_version={SCHEMA_VERSION}", token=token)
        res = self.call("POST", f"/api/v1/sync?last_pulled_at={pull['timestamp']}", {"changes": {
            "inspections": {"created": [{
                "id": iid, "task_id": task_id, "establishment_id": est_id, "started_at": now, "team": "[]",
                "representative_signed": False, "representative_refused": False, "submitted": False,
            }], "updated": [], "deleted": []},
            "photos": {"created": records, "updated": [], "deleted": []},
        }}, token=token)
        assert res == {}, f"sync push refused: {res}"
        return task_id, records

    def photo_status(self, task_id, photo_id):
        items = self.call("GET", f"/api/v1/inspections?task_id={task_id}")["items"]
        for i in items:
            for p in i.get("photos") or []:
                if p["id"] == photo_id:
                    return p["processing_status"]
        raise AssertionError(f"photo {photo_id} not in GET /api/v1/inspections?task_id={task_id}")

    def pulled_status(self, photo_id, label="b"):
        pull = self.call("GET", f"/api/v1/sync?last_pulled_at=null&schema_version={SCHEMA_VERSION}",
                         token=self.inspectors[label]["token"])
        p = pull["changes"].get("photos") or {}
        for r in (p.get("created") or []) + (p.get("updated") or []):
            if r["id"] == photo_id:
                return r["processing_status"]
        raise AssertionError(f"photo {photo_id} not in inspector {label}'s pull")


@pytest.fixture(scope="session")
def api():
    if not BASE_URL:
        pytest.skip("needs a real server: run ../run-tus-tests.sh, or set FOODCHECK_URL")
    return Api(BASE_URL, os.environ.get("FOODCHECK_ADMIN_USERNAME", "admin"),
               os.environ.get("FOODCHECK_ADMIN_PASSWORD", "admin-password-123"))


@pytest.fixture(scope="session")
def photo_dir():
    d = tempfile.mkdtemp(prefix="foodcheck-tuspy-")
    yield d
    if not os.environ.get("FOODCHECK_KEEP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_photo(photo_dir):
    def make(width=4000, height=3000):
        return photo_mod.make_jpeg(os.path.join(photo_dir, f"IMG_{uuid.uuid4().hex[:12]}.jpg"), width, height)
    return make
