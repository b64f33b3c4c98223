"""Checks of registry input shared by the client and the store: tag names, tag values, jobs.

Light on purpose (the remote client imports it): the standard library and cloudsdk.errors only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import urlparse

from cloudsdk.errors import InvalidArgumentError, InvalidNameError

TAG_RE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_TAG_VALUE = 1000
MAX_JOBS = 100
MAX_JOB_NAME = 200


def validate_tag(name: object) -> str:
    """A tag name: 1-63 characters, lower-case letters, digits, ``_ . -``, starting with a letter.

    Raises:
        InvalidNameError: anything else.
    """
    if not isinstance(name, str) or not TAG_RE.match(name):
        raise InvalidNameError(
            f"invalid tag name {name!r}: use 1-63 lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter (e.g. 'pii' or 'team.growth')", name=name)
    return name


def tag_value(value: object) -> str | None:
    """A tag's value: None, or text (numbers and booleans become text) of at most 1000 characters.

    Raises:
        InvalidArgumentError: another type, or too long.
    """
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidArgumentError(f"a tag value must be a string or None, got {type(value).__name__}")
    if len(value) > MAX_TAG_VALUE:
        raise InvalidArgumentError(f"a tag value is limited to {MAX_TAG_VALUE} characters")
    return value


def normalize_jobs(jobs: object) -> list[dict[str, str | None]]:
    """Jobs as the seed's ``jobs=[...]``: names, or ``{"name", "url"}`` dicts; returns
    ``[{"name", "url"}]`` (url None when not given).

    Raises:
        InvalidArgumentError: not a list, an empty, too long or repeated name, a url that is
            not http(s), more than 100 jobs.
    """
    if jobs is None:
        return []
    if isinstance(jobs, str | Mapping):
        jobs = [jobs]
    if not isinstance(jobs, Sequence):
        raise InvalidArgumentError('jobs must be a list of job names or {"name", "url"} dicts')
    if len(jobs) > MAX_JOBS:
        raise InvalidArgumentError(f"at most {MAX_JOBS} jobs")
    out: list[dict[str, str | None]] = []
    for job in jobs:
        url: object = None
        if isinstance(job, Mapping):
            unknown = set(job) - {"name", "url"}
            if unknown:
                raise InvalidArgumentError(f"a job has a name and a url, not {sorted(unknown)}")
            name, url = job.get("name"), job.get("url")
        else:
            name = job
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_JOB_NAME or not name.isprintable():
            raise InvalidArgumentError(
                f"a job name must be a printable string of 1-{MAX_JOB_NAME} characters, got {name!r}")
        if url is not None:
            parsed = urlparse(url) if isinstance(url, str) else None
            if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InvalidArgumentError(f"job {name!r}: url must be an http(s) URL, got {url!r}")
        clean = name.strip()
        if any(j["name"] == clean for j in out):
            raise InvalidArgumentError(f"job {clean!r} is listed twice")
        out.append({"name": clean, "url": url if isinstance(url, str) else None})
    return out


__all__ = ["normalize_jobs", "tag_value", "validate_tag"]
