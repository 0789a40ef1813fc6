#!/usr/bin/env python3
"""Benchmark: what the rehearsal of a MySQL migration on a copy costs (issue 32).

For each size (MB of rows), a stack of its own: a MariaDB server of the local image and an nginx
container with a database connection to it. Its schema makes a small table (`accounts`, 1000 rows)
and a large one (`events`), which is then filled server-side (INSERT ... SELECT from the server's
sequence tables, in chunks) until information_schema says the database holds that many MB (data
and indexes: what `snapshot_max_mb` compares). That database, tracking tables included, is copied
once into `bench_seed`, untimed.

Then rounds: the same migration (ALTER TABLE accounts ADD COLUMN plus an UPDATE of accounts)
applied with `rehearse: always` and with `rehearse: never`, the order alternating from round to
round. Before each run the database is made again from `bench_seed` (so every run starts from the
same data, the migration pending) and the server is left to flush its dirty pages; then the stack
converges in this process (Stack.present(), as bench/run.py's in-process no-op does: without
ansible-playbook's fixed cost, the same for both), timed. Each run is checked: the column and the
UPDATE are there, the file is recorded once, and only the `always` run rehearsed and kept a
snapshot. In each round, the rehearsal's two big parts are timed alone too: the dump
(mariadb-dump with the rehearsal's options, inside the server's container) and its load into a
scratch database.

Printed: per size, medians of both modes, the rehearsal's extra seconds, the ratio, the dump and
the load alone, and the snapshot's size in the stack's volume; the load average before, per size
and after. Raw times go to bench/results/rehearsal-<time>.json. Every container, network and
volume a stack made is removed at the end (the stack destroyed with purge), whatever happens.

Usage: bench/rehearsal.py [--sizes 10,200] [--runs 3] [--big-runs N] [--big-from MB] [--keep | --destroy NAME]
  --big-runs N  runs of each mode at sizes of --big-from MB (default 100) and more (default: --runs)
  --keep        leave the last stack deployed (to look at it); remove it later with --destroy NAME
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "collections"))
from ansible_collections.clockwork.connections.plugins.module_utils.docker.gateway import DockerGateway  # noqa: E402
from ansible_collections.clockwork.connections.plugins.module_utils.apply.docker_applier import DockerApplier  # noqa: E402

IMAGES = yaml.safe_load(open(os.path.join(ROOT, "tests/images/local-images.yml")))
MARIADB_IMAGE = IMAGES["mariadb_image"]
NGINX_IMAGE = IMAGES["showcase_nginx_image"]
STACK_LABEL = "io.clockwork.stack"
DATABASE = "shop"
SEED = "bench_seed"
MB = 1024 * 1024
CHUNK_ROWS = 100000
# The rehearsal's own dump options (mysql_rehearsal.DUMP_OPTIONS), for the dump timed alone.
DUMP_OPTIONS = ["--single-transaction", "--routines", "--triggers", "--events", "--no-tablespaces", "--hex-blob"]

SCHEMA = """\
CREATE TABLE accounts (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE events (id BIGINT AUTO_INCREMENT PRIMARY KEY, account_id INT NOT NULL, kind VARCHAR(16) NOT NULL,
                     payload VARCHAR(255) NOT NULL, created_at DATETIME NOT NULL, KEY events_account (account_id));
"""
MIGRATION = """\
ALTER TABLE accounts ADD COLUMN tier VARCHAR(16) NOT NULL DEFAULT 'basic';
UPDATE accounts SET tier = 'gold' WHERE id % 10 = 0;
"""
# Rows of `events` from the sequence engine's seq_<from>_to_<to>: the same data in every run; the
# payload is hex digests (160 characters), which neither the dump nor InnoDB shrinks.
FILL = ("INSERT INTO events (account_id, kind, payload, created_at) SELECT 1 + seq %% 1000, "
        "ELT(1 + seq %% 3, 'view', 'order', 'ship'), CONCAT(SHA2(seq, 256), SHA2(seq + 1, 256), MD5(seq)), "
        "TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_%d_to_%d")


def fail(text):
    sys.exit("bench/rehearsal: " + text)


def sh(*cmd, check=True, env=None):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        fail("%s failed:\n%s%s" % (" ".join(cmd[:4]), proc.stdout, proc.stderr))
    return proc


class Bench(object):
    """One size's stack: its declaration, its database, its runs."""

    def __init__(self, size, workdir):
        self.size = size
        self.name = "rehearsal-bench-%s-%d" % (os.urandom(3).hex(), size)
        self.db, self.app = self.name + "-db", self.name + "-app"
        # Never printed: it goes to the server's env and the connection only.
        self.password = os.urandom(12).hex()
        self.workdir = workdir
        with open(os.path.join(workdir, "schema.sql"), "w") as handle:
            handle.write(SCHEMA)
        os.makedirs(os.path.join(workdir, "migrations"), exist_ok=True)

    def declaration(self, rehearse):
        resources = [
            {"name": self.db, "image": MARIADB_IMAGE, "env": {"MARIADB_ROOT_PASSWORD": self.password},
             "healthcheck": {"test": ["CMD", "healthcheck.sh"], "interval": "1s", "start_period": "60s"}},
            {"name": self.app, "image": NGINX_IMAGE},
        ]
        connections = [{"type": "database", "from": self.app, "to": self.db, "engine": "mariadb",
                        "password": self.password, "database_name": DATABASE,
                        "schema_file": os.path.join(self.workdir, "schema.sql"),
                        "migrations_dir": os.path.join(self.workdir, "migrations"),
                        "timeout": 120, "rehearse": rehearse}]
        return resources, connections

    def converge(self, rehearse):
        """Stack.present() in this process; returns (seconds, the database connection's actions)."""
        resources, connections = self.declaration(rehearse)
        started = time.monotonic()
        report = DockerApplier(DockerGateway(), self.name, resources, connections, base_dir=self.workdir).present()
        seconds = time.monotonic() - started
        label = "database %s -> %s" % (self.app, self.db)
        actions = [a for e in report["entries"] if e["name"] == label for a in e["actions"]]
        if report.get("warnings"):
            fail("%s: warnings: %s" % (self.name, report["warnings"]))
        return seconds, actions

    def destroy(self):
        """The stack destroyed with purge: its containers, network, snapshot volume and the server's
        anonymous data volume (unlabelled: looked up on the containers first, checked gone after)."""
        label = "label=%s=%s" % (STACK_LABEL, self.name)
        containers = sh("docker", "ps", "-aq", "--filter", label).stdout.split()
        anonymous = []
        if containers:
            mounts = sh("docker", "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}}\n{{end}}", *containers)
            anonymous = [line.split()[1] for line in mounts.stdout.splitlines()
                         if line.startswith("volume ") and len(line.split()[1]) == 64]
        resources, connections = self.declaration("never")
        DockerApplier(DockerGateway(), self.name, resources, connections, base_dir=self.workdir).absent(purge=True)
        left = leftovers(self.name) + ["volume %s" % volume for volume in anonymous
                                       if sh("docker", "volume", "inspect", volume, check=False).returncode == 0]
        if left:
            fail("%s left behind: %s" % (self.name, ", ".join(left)))

    # -- SQL inside the server's container (over TCP to 127.0.0.1, the password in MYSQL_PWD) --

    def sql(self, query, database=DATABASE):
        proc = sh("docker", "exec", "-e", "MYSQL_PWD=" + self.password, self.db, "mariadb", "--protocol=TCP",
                  "-h", "127.0.0.1", "-u", "root", "-N", "-B", "-D", database, "-e", query, check=False)
        if proc.returncode != 0:
            fail("%s: %s ... failed: %s" % (self.db, query[:80], proc.stderr.strip()))
        return proc.stdout.strip()

    def timed_exec(self, *argv):
        started = time.monotonic()
        proc = sh("docker", "exec", "-e", "MYSQL_PWD=" + self.password, self.db, *argv, check=False)
        if proc.returncode != 0:
            fail("%s: %s failed: %s" % (self.db, argv[0], proc.stderr.strip()))
        return time.monotonic() - started

    def holdings(self, database=DATABASE):
        """Bytes of data and indexes of the database's tables, as the rehearsal measures them."""
        tables = self.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = '%s'" % database)
        self.sql("ANALYZE TABLE %s" % ", ".join("`%s`" % t for t in tables.split()), database)
        return int(self.sql("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                            "WHERE table_schema = '%s'" % database))

    def fill(self):
        """accounts: 1000 rows; events: rows until the database holds `size` MB; then the seed copy."""
        self.sql("INSERT INTO accounts (name, created_at) SELECT CONCAT('account ', seq), "
                 "TIMESTAMP '2026-01-01 00:00:00' FROM seq_1_to_1000")
        rows, target = 0, self.size * MB
        # A first chunk tells the bytes per row; the rest follows from it, topped up if short.
        first = min(20000, max(1000, target // 400))
        self.sql(FILL % (1, first))
        rows = first
        while True:
            held = self.holdings()
            if held >= target:
                break
            per_row = max(1.0, float(held) / rows)
            wanted = int((target - held) / per_row) + 1
            while wanted > 0:
                chunk = min(CHUNK_ROWS, wanted)
                self.sql(FILL % (rows + 1, rows + chunk))
                rows, wanted = rows + chunk, wanted - chunk
        self.rows, self.held = rows, held
        charset = self.sql("SELECT default_character_set_name, default_collation_name FROM "
                           "information_schema.schemata WHERE schema_name = '%s'" % DATABASE).split("\t")
        self.charset = charset
        self.copy(DATABASE, SEED)

    def copy(self, source, target):
        """`target` made again as a copy of every table of `source`, rows included."""
        tables = self.sql("SELECT table_name FROM information_schema.tables WHERE table_schema = '%s'" % source,
                          source).split()
        statements = ["DROP DATABASE IF EXISTS `%s`" % target,
                      "CREATE DATABASE `%s` CHARACTER SET %s COLLATE %s" % (target, self.charset[0], self.charset[1])]
        for table in tables:
            statements.append("CREATE TABLE `%s`.`%s` LIKE `%s`.`%s`" % (target, table, source, table))
            statements.append("INSERT INTO `%s`.`%s` SELECT * FROM `%s`.`%s`" % (target, table, source, table))
        self.sql("; ".join(statements), source)

    def settle(self, seconds=120):
        """Have InnoDB write back what the copy dirtied (it would at its own pace, during the next run):
        its dirty-page goal at 0 until they are written, then its own value again. Returns the seconds."""
        started = time.monotonic()
        goal = self.sql("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
        self.sql("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        try:
            while time.monotonic() - started < seconds:
                dirty = int(self.sql("SELECT variable_value FROM information_schema.global_status "
                                     "WHERE variable_name = 'INNODB_BUFFER_POOL_PAGES_DIRTY'"))
                if dirty < 10:
                    break
                time.sleep(0.2)
            else:
                print("  (%d pages still dirty after %ds)" % (dirty, seconds), flush=True)
        finally:
            self.sql("SET GLOBAL innodb_max_dirty_pages_pct = %s" % goal)
        return time.monotonic() - started

    def reset(self):
        """The database as it was after the fill: the migration pending again."""
        started = time.monotonic()
        self.copy(SEED, DATABASE)
        copied = time.monotonic() - started
        return copied, self.settle()

    def check_applied(self, rehearse, actions):
        gold = self.sql("SELECT COUNT(*) FROM accounts WHERE tier = 'gold'")
        recorded = self.sql("SELECT COUNT(*) FROM clockwork_schema_migrations WHERE name = 'V2__tier.sql'")
        rehearsed = any(a.startswith("rehearse ") for a in actions)
        if gold != "100" or recorded != "1":
            fail("%s: the migration did not apply as expected (gold %s, recorded %s): %s" % (
                self.name, gold, recorded, actions))
        if rehearsed != (rehearse == "always"):
            fail("%s: rehearse: %s, yet the actions were %s" % (self.name, rehearse, actions))

    def snapshots(self):
        """[(name, bytes)] of the dumps kept in the stack's volume, oldest first (a helper container of
        the server's image, labelled as the stack's, removed at once)."""
        volume = "%s-clockwork-snapshots" % self.name
        proc = sh("docker", "run", "--rm", "--label", "%s=%s" % (STACK_LABEL, self.name), "-v", volume + ":/s:ro",
                  "--entrypoint", "find", MARIADB_IMAGE, "/s", "-name", "*.sql", "-printf", "%T@ %s %f\n")
        rows = sorted(line.split() for line in proc.stdout.splitlines() if line.strip())
        return [(name, int(size)) for _when, size, name in rows]

    def dump_and_load(self):
        """The rehearsal's dump and its load into a scratch database, each timed alone."""
        path = "/tmp/bench-dump.sql"
        address = ["--protocol=TCP", "-h", "127.0.0.1", "-u", "root"]
        dump = self.timed_exec("mariadb-dump", *(address + DUMP_OPTIONS + ["--result-file=" + path, DATABASE]))
        self.sql("DROP DATABASE IF EXISTS bench_scratch; CREATE DATABASE bench_scratch CHARACTER SET %s COLLATE %s"
                 % tuple(self.charset))
        load = self.timed_exec("mariadb", *(address + ["-D", "bench_scratch", "-e", "source " + path]))
        self.sql("DROP DATABASE bench_scratch")
        sh("docker", "exec", self.db, "rm", "-f", path)
        return dump, load


def leftovers(stack):
    """What still carries the stack's label."""
    label = "label=%s=%s" % (STACK_LABEL, stack)
    found = []
    for kind, cmd in (("container", ["ps", "-aq"]), ("network", ["network", "ls", "-q"]),
                      ("volume", ["volume", "ls", "-q"])):
        found.extend("%s %s" % (kind, ident) for ident in sh("docker", *(cmd + ["--filter", label])).stdout.split())
    return found


def median(values):
    return statistics.median(values) if values else float("nan")


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


def measure(size, runs, keep):
    with tempfile.TemporaryDirectory(prefix="rehearsal-bench-") as workdir:
        bench = Bench(size, workdir)
        print("\n%d MB: stack %s" % (size, bench.name), flush=True)
        try:
            started = time.monotonic()
            seconds, _actions = bench.converge("never")
            print("  deployed in %.1fs (schema applied)" % seconds, flush=True)
            started = time.monotonic()
            bench.fill()
            print("  filled: %d rows of events, %.1f MB of data and indexes, in %.1fs (and the seed copy)" % (
                bench.rows, bench.held / float(MB), time.monotonic() - started), flush=True)
            with open(os.path.join(workdir, "migrations", "V2__tier.sql"), "w") as handle:
                handle.write(MIGRATION)
            times = {"always": [], "never": [], "dump": [], "load": []}
            snapshot_sizes = []
            for round_number in range(runs):
                order = ("always", "never") if round_number % 2 == 0 else ("never", "always")
                for mode in order:
                    copied, settled = bench.reset()
                    seconds, actions = bench.converge(mode)
                    bench.check_applied(mode, actions)
                    times[mode].append(seconds)
                    if mode == "always":
                        snapshot_sizes.append(bench.snapshots()[-1][1])
                    print("  round %d: rehearse %-6s %6.2fs   (before it: the copy from %s %.1fs, the flush %.1fs; "
                          "load %s)" % (round_number + 1, mode, seconds, SEED, copied, settled, load()), flush=True)
                bench.settle()
                dump, load_seconds = bench.dump_and_load()
                times["dump"].append(dump)
                times["load"].append(load_seconds)
                print("  round %d: dump alone %.2fs, load alone %.2fs" % (round_number + 1, dump, load_seconds),
                      flush=True)
        finally:
            if keep:
                print("  kept: stack %s (bench/rehearsal.py --destroy %s)" % (bench.name, bench.name))
            else:
                bench.destroy()
                print("  removed: stack %s, its containers, network and volumes" % bench.name, flush=True)
    medians = dict((key, median(values)) for key, values in times.items())
    return {"size_mb": size, "stack": bench.name, "rows": bench.rows, "held_bytes": bench.held, "runs": runs,
            "times": times, "medians": medians, "extra": medians["always"] - medians["never"],
            "ratio": medians["always"] / medians["never"], "snapshot_bytes": median(snapshot_sizes),
            "load_after": os.getloadavg()}


def print_table(results):
    print("\n| data | runs | rehearse: never | rehearse: always | extra | ratio | dump alone | load alone | "
          "snapshot |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r["medians"]
        print("| %.0f MB | %d | %.2f s | %.2f s | %.2f s | %.2fx | %.2f s | %.2f s | %.0f MB |" % (
            r["held_bytes"] / float(MB), r["runs"], m["never"], m["always"], r["extra"], r["ratio"], m["dump"],
            m["load"], r["snapshot_bytes"] / float(MB)))


def sizes_list(text):
    return [int(part) for part in text.split(",") if part.strip()]


def destroy_named(name):
    """Remove a stack --keep left: the same destroy with purge, by its name."""
    if not name.startswith("rehearsal-bench-"):
        fail("%s is not a stack this benchmark made (rehearsal-bench-...)" % name)
    with tempfile.TemporaryDirectory() as workdir:
        bench = Bench(int(name.rsplit("-", 1)[1]), workdir)
        bench.name, bench.db, bench.app = name, name + "-db", name + "-app"
        bench.destroy()


def main():
    parser = argparse.ArgumentParser(description="what the rehearsal of a MySQL migration on a copy costs")
    parser.add_argument("--sizes", type=sizes_list, default=[10, 200], help="MB of rows, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode per size")
    parser.add_argument("--big-runs", type=int, help="runs of each mode at sizes of --big-from MB and more")
    parser.add_argument("--big-from", type=int, default=100, help="where --big-runs starts (MB)")
    parser.add_argument("--keep", action="store_true", help="leave the last size's stack deployed")
    parser.add_argument("--destroy", metavar="NAME", help="remove a stack --keep left, and nothing else")
    args = parser.parse_args()
    if args.destroy:
        destroy_named(args.destroy)
        return
    if not sh("docker", "image", "inspect", MARIADB_IMAGE, check=False).returncode == 0:
        fail("image %s is missing: make images" % MARIADB_IMAGE)
    report = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg(), "python": platform.python_version(),
                          "docker": sh("docker", "version", "-f", "{{.Server.Version}}").stdout.strip()},
              "commit": sh("git", "rev-parse", "--short", "HEAD", check=False).stdout.strip(),
              "options": vars(args), "sizes": []}
    print("load average before: %s (%d cores)" % (load(), os.cpu_count()), flush=True)
    started = time.monotonic()
    for index, size in enumerate(args.sizes):
        runs = args.big_runs if args.big_runs and size >= args.big_from else args.runs
        report["sizes"].append(measure(size, runs, args.keep and index == len(args.sizes) - 1))
    report["machine"]["load_after"] = os.getloadavg()
    report["seconds"] = time.monotonic() - started
    print_table(report["sizes"])
    print("\nmedian seconds of Stack.present() in this process (the migration pending, the containers unchanged); "
          "extra = always - never; load average after: %s; %.0fs in all" % (load(), report["seconds"]))
    busy = max(report["machine"]["load_before"][0], report["machine"]["load_after"][0])
    if busy > os.cpu_count():
        print("bench/rehearsal: the machine was busy (load %.1f on %d cores): absolute times are inflated"
              % (busy, os.cpu_count()))
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    out = os.path.join(ROOT, "bench/results", "rehearsal-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    with open(out, "w") as handle:
        json.dump(report, handle, indent=2)
    print("raw times: %s" % os.path.relpath(out, ROOT))


if __name__ == "__main__":
    main()
