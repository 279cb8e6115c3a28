"""JSON responses through orjson: the same bytes Flask's default provider writes with
ensure_ascii=False and sort_keys=False (compact, raw UTF-8, insertion order), ~20x faster;
serialising was the largest single cost of a consent check. Anything orjson does not take
(datetimes, integers beyond 64 bits, pretty-printing in debug) goes the stdlib way."""

from __future__ import annotations

from typing import Any, cast

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response as BaseResponse

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class OrjsonProvider(DefaultJSONProvider):
    ensure_ascii = False
    sort_keys = False

    def response(self, *args: Any, **kwargs: Any) -> BaseResponse:
        obj = self._prepare_response_obj(args, kwargs)
        response_class = cast(type[Response], self._app.response_class)  # Flask's, or the app's subclass
        return response_class(self.body(obj), mimetype=self.mimetype)

    def body(self, obj: Any) -> bytes:
        """The bytes response(obj) answers with (web/fastwrites.py sends them itself)."""
        pretty = (self.compact is None and self._app.debug) or self.compact is False
        if not pretty and not self.ensure_ascii:
            option = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
            try:
                return orjson.dumps(obj, default=self.default, option=option) + b"\n"
            except TypeError:  # orjson.JSONEncodeError: e.g. an int beyond 64 bits
                pass
        return cast(Response, super().response(obj)).get_data()
