"""stack_summary: a stack result as lines; a dry run's worded as what would be done."""
from jinja2 import Environment

from ansible_collections.clockwork.connections.plugins.filter.summary import FilterModule, stack_summary

RESULT = {"order": ["db", "api"], "entries": [
    {"kind": "container", "name": "db", "changed": False, "actions": []},
    {"kind": "container", "name": "api", "changed": True, "actions": ["recreate"], "reasons": ["image"]},
    {"kind": "network", "name": "backend", "changed": True, "actions": ["create network backend"]}],
    "checks": [{"connection": "database api -> db", "ok": True, "msg": "login"}]}
RAN = ["order: db, api", "container db: unchanged", "container api: recreated (image)",
       "network backend: create network backend", "check database api -> db [ok]: login"]
WOULD = ["order: db, api", "container db: unchanged", "container api: would be recreated (image)",
         "network backend: would: create network backend", "check database api -> db [ok]: login"]


def test_a_run_and_a_dry_run():
    assert stack_summary(RESULT) == RAN
    assert stack_summary(RESULT, True) == stack_summary(RESULT, dry_run=True) == WOULD


def test_the_filter_takes_the_option_positionally_by_name_and_by_its_former_name():
    environment = Environment()
    environment.filters.update(FilterModule().filters())
    for call, expected in (("stack_summary", RAN), ("stack_summary(flag)", WOULD),
                           ("stack_summary(dry_run=flag)", WOULD), ("stack_summary(check_mode=flag)", WOULD),
                           ("stack_summary(check_mode=false)", RAN)):
        rendered = environment.from_string("{{ (result | %s) | join('\\n') }}" % call).render(result=RESULT, flag=True)
        assert rendered.splitlines() == expected, call


def test_the_release_a_run_made_is_named():
    made = dict(RESULT, release={"number": 4, "pruned": [1], "path": "clockwork-releases:shop.4"})
    assert stack_summary(made)[-1] == "release 4 recorded (release 1 pruned)"
    assert stack_summary(made, dry_run=True)[-1] == "would record release 4 (release 1 pruned)"
    back = dict(RESULT, release={"number": 5, "pruned": []}, rolled_back_to=3)
    assert stack_summary(back)[-1] == "release 5 recorded (back on release 3)"
    assert stack_summary(RESULT) == RAN, "a run that recorded no release says none"
