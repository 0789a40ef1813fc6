# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OpenAI-compatible chat-completions client (OpenAI, Ollama, LM Studio, vLLM,
llama.cpp), asked for JSON that matches a schema, at temperature 0."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

RETRYABLE_STATUS = (429, 500, 502, 503, 504)
TRANSPORT_ATTEMPTS = 4
DEFAULT_TIMEOUT = 60


class LLMError(Exception):
    pass


def settings(task_llm=None):
    """The endpoint: the task's `llm` option, else CLOCKWORK_LLM_*, else OPENAI_*. None when unset."""
    task_llm = dict((k, v) for k, v in (task_llm or {}).items() if v is not None)
    base_url = task_llm.get("base_url") or os.environ.get("CLOCKWORK_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        return None
    return {
        "base_url": base_url.rstrip("/"),
        "model": task_llm.get("model") or os.environ.get("CLOCKWORK_LLM_MODEL") or "gpt-4o-mini",
        "api_key": task_llm.get("api_key") or os.environ.get("CLOCKWORK_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY"),
        "timeout": float(task_llm.get("timeout") or DEFAULT_TIMEOUT),
    }


def chat_json(endpoint, messages, schema, sleep=time.sleep):
    """POST one chat completion asking for `schema`; returns the message text.

    HTTP 429 and 5xx answers and transport errors are retried with backoff, a bounded
    number of times; then LLMError says what happened at which endpoint.
    """
    url = endpoint["base_url"] + "/chat/completions"
    body = json.dumps({
        "model": endpoint["model"], "temperature": 0, "messages": messages,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "connection_fields", "strict": True, "schema": schema}},
    })
    headers = {"Content-Type": "application/json"}
    if endpoint.get("api_key"):
        headers["Authorization"] = "Bearer %s" % endpoint["api_key"]
    # Imported here: a run that asks no model (every run but a first completion) never pays for it.
    from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel
    last = None
    for attempt in range(TRANSPORT_ATTEMPTS):
        if attempt:
            sleep(min(0.5 * 2 ** (attempt - 1), 4))
        try:
            response = open_url(url, data=body, headers=headers, method="POST", timeout=endpoint["timeout"])
            answer = json.loads(response.read())
            return answer["choices"][0]["message"]["content"]
        except HTTPError as exc:
            last = "HTTP %s %s" % (exc.code, exc.reason)
            if exc.code not in RETRYABLE_STATUS:
                raise LLMError("%s from %s" % (last, url))
        except (URLError, OSError) as exc:   # refused, unreachable, timed out
            last = "no answer (%s)" % getattr(exc, "reason", exc)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError("%s answered something that is not a chat completion (%s)" % (url, exc))
    raise LLMError("%s after %d attempts at %s" % (last, TRANSPORT_ATTEMPTS, url))
