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
        pretty = (self.compact is None and self._app.debug) or self.compact is False
        if pretty or self.ensure_ascii:
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        option = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        try:
            body = orjson.dumps(obj, default=self.default, option=option)
        except TypeError:  # orjson.JSONEncodeError: e.g. an int beyond 64 bits
            return super().response(*args, **kwargs)
        response_class = cast(type[Response], self._app.response_class)  # Flask's, or the app's subclass
        return response_class(body + b"\n", mimetype=self.mimetype)
