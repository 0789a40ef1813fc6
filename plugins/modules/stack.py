#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
---
module: stack
short_description: Converge a whole declared stack of containers, files, volumes and connections in one call
version_added: 0.1.0
description:
  - Plans the stack on the controller before touching anything. The plan validates every resource and
    connection against its type (unknown or duplicate resources, unknown types, fields that a type does not
    have, invalid names, ports, durations, templates, paths, host ports published twice, conflicting env or
    mounts, cycles spelled out like C(api -> cache -> api)), and reports every problem at once, each naming its
    entry and field. It holds the deployment order (a resource after what it connects to, ties by declaration
    order) and every container's spec with what connections contribute to it.
  - A pre-flight then checks what needs the engine, again all at once and before the first change (images
    present or pullable, names not taken by containers the stack does not own, host ports free, existing
    networks and volumes usable as they are, bind sources present on the Docker host, discoverable ports).
  - Then it applies the plan, all in one process, with the code of the single modules; networks, volumes,
    files and TLS material first, then per resource in order its outgoing connections and its container.
  - The files a declaration names beside the playbook (C(schema_file), C(migrations_dir), a relative
    C(source_path)) are read on the controller into the task's arguments, so a remote Docker host needs none
    of them.
  - Every container joins the stack's network C(<name>_default) with its name as DNS alias, as in
    Docker Compose. What connections put into their C(to) container (a shared volume, TLS files) is
    part of its declaration from the start, so a first deployment creates each container once.
  - O(state=absent) removes, in reverse order, the containers and networks that carry the stack's
    label C(io.clockwork.stack), and nothing else; named volumes stay unless O(purge=true). Each running
    container is first stopped, as C(docker compose down) does, so a database closes its files; it is sent
    its stop signal (SIGTERM unless the image sets another), and killed only after its C(stop_grace_period).
  - O(state=verified) changes nothing and runs every connection's checks from inside the containers,
    failing with the list of every failed check.
  - The fields of each resource and connection are those of M(clockwork.connections.container) and of
    the connection modules; each entry is checked against its own type's fields and defaults.
  - Connections with a C(description) and missing fields are completed first, all in one pass, by the
    action plugin (see O(llm)); the result's C(completion) lists them by connection.
author:
  - Clockwork Connections developers (@clockwork-connections)
extends_documentation_fragment:
  - clockwork.connections.connection.completion
requirements:
  - docker (the Docker SDK for Python) >= 7.0
  - psycopg >= 3.1 and redis >= 4 for database connections; cryptography for TLS
options:
  name:
    description: The stack's name, carried by everything it creates as the label C(io.clockwork.stack). Lower-case
      letters, digits, C(-) and C(_), starting with a letter or digit (Compose's project-name rule), at most 100
      characters.
    type: str
    required: true
  state:
    description:
      - C(present) converges the stack; C(absent) removes what it owns; C(verified) runs the checks only;
        C(rolled_back) returns the stack to one of its recorded releases (O(release)), without its declaration.
      - With C(present), when a resource fails (not ready, crashed, a migration refused), or with O(verify) a
        connection's check fails after the apply, and the stack has a recorded release, every container this run
        replaced goes back to that release's spec (start-first where its update order allows, so clients see no
        failed request), the containers this run added are removed (their volumes kept), and the task fails
        naming the resource and saying C(the stack is back on release N).
        A stack with no release yet fails as it is.
      - With C(rolled_back), each container goes back to the release's record of it (its image by ID, its whole
        config), start-first where it may; a container the release did not have is removed (the stack's own only,
        volumes kept); the result is recorded as a new release. Refused before any change when the release is
        gone (pruned) or one of its images or networks was removed from the Docker host. A rollback killed
        half-way is completed by the next run of the same rollback, and a rerun changes nothing.
        O(resources) and O(connections) are not needed (O(restore_data) needs the database connections).
      - With O(engine=swarm), the same for services. After a failed C(present), each service the run created,
        updated or recreated goes back to the whole spec the release recorded (not only Swarm's one-step
        PreviousSpec; Swarm replaces its tasks start-first where that spec's update order says so), and the services
        it made are removed. With C(rolled_back), every service of the stack is updated to its spec (made again when
        gone, its image pinned by ID when its tag names another image since), and those the release did not have
        are removed. Refused before any change when an image, secret, config or network its services use is gone.
        A job (a dependency with C(completed_successfully) makes its C(to) one) is never run again by going back,
        as Swarm would on any update of its spec. A job whose spec differs from the release is left as it ran, and
        one of the release that is gone is not made again, both named in the result (C(job migrate is not run
        again, it ran with release 2's spec)); a job the release does not have is removed like any other service
        (what its completed tasks did is not undone). After a failed C(present), the overlay networks the run made
        that the release does not have are removed too (the stack's own, once no service uses them; never an
        external one).
    type: str
    choices: [present, absent, verified, rolled_back]
    default: present
  release:
    description:
      - With O(state=rolled_back), the release to return to, a number as RV(release) and
        M(clockwork.connections.stack_info) name it, or C(previous), the release before the current one.
      - When the current release was itself made by a rollback, C(previous) is the release that rollback returned
        to, so that a rerun of the same rollback changes nothing; name a number to go further back.
    type: str
    default: previous
  restore_data:
    description:
      - With O(state=rolled_back), also restore each database from the snapshot taken before the next
        release's migrations; its clients in the stack are stopped first. Rows written after the snapshot are
        lost, which O(state=rolled_back) in check mode says. Without it the databases keep their data and
        schema (migrations are meant to be backward compatible).
      - The databases' logins are taken from O(connections), so give the stack's declaration with it. A rerun of
        the rollback that restored them restores nothing again.
      - With O(engine=swarm), the clients are the database's client services, scaled to 0 (their tasks waited for
        until none runs) and put back on the release's spec afterwards, replicas included; each database is restored
        through the engine of the node its server's task runs on, from the stack's snapshot volume there. Refused
        before any change when that volume lacks the snapshot, a client is a global service, or the copy is a Redis
        one (its restore restarts the server, which Swarm would replace by a new task).
    type: bool
    default: false
  purge:
    description:
      - With O(state=absent), remove the stack's named volumes too, and the anonymous volumes its containers
        hold (a database's data directory, carried over recreations); without it they are kept, as Compose's
        C(down) keeps them without C(-v). The anonymous volumes a destroy kept are recorded under
        C(~/.clockwork/<name>/kept-volumes) on the Docker host, so that a later destroy with O(purge=true)
        removes them too.
    type: bool
    default: false
  verify:
    description:
      - With O(state=present), run every connection's checks right after the convergence, in the same call
        and in parallel, reusing what the convergence inspected; failed checks fail the task, listing each.
        After an apply that changed something, the stack first goes back to its current release (see O(state)).
      - A check that fails at first is retried for a few seconds, as a server that was just started may need
        a moment.
    type: bool
    default: false
  releases_kept:
    description:
      - How many releases of the stack are kept in the Docker engine (images C(clockwork-releases:<name>.<n>) of
        one file of mode 0600; see M(clockwork.connections.stack_info)); an apply that changes something records
        one. 1 to 100.
    type: int
    default: 5
  controller:
    description:
      - C(user@host) of the controller, recorded in each release. Set by the stack action plugin; when not given,
        the user and host the module runs as.
    type: str
  parallel:
    description:
      - How many containers converge at once. Each starts as soon as every container it connects to is
        converged and ready (healthy, when it has a healthcheck), as Docker Compose starts services whose
        dependencies are satisfied. C(1) converges one after another.
      - Results stay in the plan's order whatever finishes first; after a failure nothing new starts, what
        runs finishes, and every failure is reported.
      - On the controller's own process (the local connection), a line per container is printed as it
        converges (those with nothing to do with C(-v)); never under C(no_log).
    type: int
    default: 16
  engine:
    description:
      - Where the plan is applied. C(docker) converges containers on one Docker engine. C(swarm) converges
        Swarm services across the nodes of the swarm the engine manages (it must be a manager), from the
        same declaration.
      - 'With C(swarm): every container resource is a service of its name, on the attachable overlay networks
        C(<name>_default) and those of network connections (C(bridge) and C(overlay) both become overlay);
        secret env values (declared passwords, C(DATABASE_URL)) are Docker secrets, and the service gets
        C(<NAME>_FILE) instead; files are configs (private ones secrets), named by content; services sharing
        a volume are placed on one node; a dependency with C(completed_successfully) makes its C(to) a
        replicated job; checks run inside a task. Services converge in order, each after what it connects
        to, bounded by its C(timeout).'
      - Updates change only what the declaration manages (compared field by field, recorded in the label
        C(io.clockwork.spec-hash)) and keep every other field of the service; a failed one reports its
        tasks' errors. O(state=absent) removes the services, then the networks, secrets and configs of
        the stack; volumes stay unless O(purge=true).
    type: str
    choices: [docker, swarm]
    default: docker
  base_dir:
    description:
      - Directory on the Docker host against which relative paths of things there resolve (file resources'
        C(path), files the stack writes).
      - The action plugin sets the playbook's directory when the Docker host is the controller itself, else
        C(~/.clockwork/<name>) of the remote user.
    type: path
  diagram_path:
    description:
      - With O(state=present), write a Markdown file with a Mermaid picture of the stack there (resources,
        connections with their types, the env each injects), when its content differs.
      - The action plugin writes it on the controller, beside the playbook, whatever the target.
    type: path
  resources:
    description:
      - The stack's resources. C(container) (the default type) takes the options of
        M(clockwork.connections.container); C(file) takes C(path), C(content), C(mode) and C(owner);
        C(volume) takes C(volume_name), C(driver) and C(external); C(network) takes C(network_name), C(driver),
        C(internal), C(enable_ipv6), C(subnet), C(gateway) and C(external).
    type: list
    elements: dict
    default: []
    suboptions:
      content:
        description: Content of the file at C(source_path), written when it differs.
        type: str
      default_network:
        description:
        - "Container resources: whether the container joins the stack's network C(<stack>_default), where every
          container reaches the others by name. C(false) keeps it on the networks it lists and those of its
          network connections only (a Compose service on named networks); it must have one at least.
          Default C(true)."
        type: bool
      driver:
        description:
        - 'Volume resource: the volume driver. Default C(local).'
        - 'Network resource: the network driver (C(bridge), C(macvlan), C(ipvlan), C(overlay) or a plugin''s);
          C(host) and C(none) are refused. On engine swarm the network is an attachable overlay network: only
          C(bridge) (taken as overlay) and C(overlay) are accepted. Default C(bridge).'
        type: str
      enable_ipv6:
        description: 'Network resource only: IPv6 on the network. Default C(false).'
        type: bool
      endpoint_mode:
        description:
        - 'Engine swarm only: how the service name answers: C(vip) (one virtual IP) or C(dnsrr) (the addresses
          of its tasks in turn); C(tasks.<name>) lists every task either way. Published ports are ingress
          ports with C(vip), host-mode ports with C(dnsrr).'
        - C(vip) when not set, unless the Docker host's kernel has no IPVS, where a virtual IP does not
          answer; then C(dnsrr), with a warning. One of C(vip), C(dnsrr).
        type: str
      external:
        description:
        - 'Network or volume resource: Compose''s C(external: true). The network or volume is used as it is:
          the stack never creates, compares, recreates or removes it (a destroy with O(purge=true) included).
          It must exist: the pre-flight refuses a missing one before any change. On engine swarm a network must
          be an overlay network of the swarm.'
        - Settings given beside it (C(driver), C(internal), C(enable_ipv6), C(subnet), C(gateway)) are refused,
          as Compose refuses them. Default C(false).
        type: bool
      gateway:
        description: 'Network resource only: the gateway address, inside C(subnet) (which it needs).'
        type: str
      internal:
        description: 'Network resource only: a network with no route out of it. Default C(false).'
        type: bool
      max_replicas_per_node:
        description: 'Engine swarm only: at most this many tasks of the service on one node, so that the
          replicas spread over the nodes.'
        type: int
      mode:
        description: File mode for C(source_path), like C(0644).
        type: raw
      name:
        description: 'The resource''s name: the container''s name and DNS alias on the stack''s network.'
        type: str
      network_name:
        description:
        - 'Network resource only: the Docker network''s name, default the resource''s own name. It must not be
          the stack''s default network C(<stack>_default).'
        - The stack makes it before any container, whether or not a connection needs it, labelled as the
          stack's; containers join it by listing it in their C(networks). A changed field recreates it with the
          stack's containers reconnected (refused while a container of no stack is on it). C(state=absent)
          removes it only when the stack made it (a network the stack found is left). An C(external) one is never
          made, changed or removed.
        type: str
      owner:
        description: Owner (name or uid) of C(source_path) on the Docker host.
        type: str
      path:
        description: 'File resource only: its path on the Docker host; relative paths resolve against the
          playbook.'
        type: path
      plain_env:
        description: 'Engine swarm only: secret env variables that stay in the service''s env, for an application
          that cannot read C(<NAME>_FILE); C(docker service inspect) shows them, and every run warns.'
        type: list
        elements: str
      subnet:
        description: 'Network resource only: the network''s subnet, like C(172.28.0.0/24) (no host bits).'
        type: str
      replicas:
        description:
        - 'Engine swarm: how many tasks the service runs (a job: how many complete); a change is a rolling
          update.'
        - 'Engine docker: how many containers run: one is named as the resource; more are C(<name>-1) ..
          C(<name>-N), labelled with the resource and their number, each with the alias C(<name>) on every
          network of the resource, so DNS answers the name with all of them. They are updated one at a time
          (see C(update_order)); scaling adds or removes only the replicas concerned (between one
          and several, the kept container is renamed, not restarted). Checks run against every replica. Several
          replicas cannot publish a fixed host port or be the server of a database connection. Default 1.'
        type: int
      timeout:
        description: Seconds to wait; on time-out or exit the task fails with the last log lines.
        type: int
      type:
        description: The connection type, or the resource type.
        type: str
        choices:
        - container
        - file
        - network
        - volume
        default: container
      update_order:
        description:
        - How a changed container is replaced. C(start-first) starts the new one beside the old with the same
          network aliases, waits until it is ready (healthy with a healthcheck, else running), then takes the
          old one off its networks, stops it with C(stop_grace_period) and removes it; a new one
          that does not become ready is removed and the old one keeps serving. C(stop-first) stops the old one
          first (it is renamed aside and put back if the new one fails).
        - Default C(stop-first) where two containers must not run at once (a volume, declared, from a
          connection or from the image, or a fixed host port), else C(start-first). Engine swarm, the
          service's update order.
        type: str
      volume_name:
        description: 'Volume resource, or file connection: the volume''s name (a volume resource defaults
          to its own name).'
        type: str
      wait:
        description: With C(state=started), wait until the container runs, and is healthy if it has a healthcheck.
        type: bool
      # BEGIN container options: written by scripts/option_docs.py from the option table; do not edit
      image:
        description:
        - Image reference. Pulled when absent locally; a pull failure names the image.
        - Required unless C(state=absent).
        - 'Compose: C(image).'
        type: str
      command:
        description:
        - Command, as a list or a string split like a shell would. Defaults to the image's.
        - 'Compose: C(command).'
        type: raw
      ports:
        description:
        - Container ports, declared and optionally published on the host.
        - C(8000) or C(8000/udp) declares a port without publishing it; C(8080:80) or C(127.0.0.1:8080:80) also publishes
          it; a dict with C(container_port), C(host_port), C(host_ip) and C(protocol) is accepted too.
        - Declared ports are what M(clockwork.connections.service_mesh_connection) discovers.
        - 'Compose: C(ports), C(expose).'
        type: list
        elements: raw
      mounts:
        description:
        - Bind mounts, named volumes, anonymous volumes and tmpfs mounts.
        - 'A volume mount without a source is an anonymous volume (Compose''s C(- /path)): a recreate gives the new container
          the old one''s.'
        - C(mounts[].propagation) is a bind mount's (Compose's C(bind.propagation)), C(mounts[].nocopy) a volume's (C(volume.nocopy)),
          C(mounts[].tmpfs_size) and C(mounts[].tmpfs_mode) a tmpfs mount's.
        - 'Compose: C(volumes).'
        type: list
        elements: dict
        suboptions:
          type:
            description: C(bind) for a host path, C(volume) for a named or anonymous volume, C(tmpfs) for a tmpfs.
            type: str
            choices:
            - bind
            - volume
            - tmpfs
            default: volume
          source:
            description: Host path (relative paths resolve against the current directory) or volume name; none for an
              anonymous volume or a tmpfs.
            type: str
          target:
            description: Absolute path inside the container.
            type: str
            required: true
          read_only:
            description: Mount read-only.
            type: bool
            default: false
          propagation:
            description: A bind mount's propagation.
            type: str
            choices:
            - private
            - rprivate
            - shared
            - rshared
            - slave
            - rslave
          nocopy:
            description: 'A volume mount: do not copy the image''s files at the target into a new volume.'
            type: bool
          tmpfs_size:
            description: A tmpfs mount's size, like C(64m) (bytes when a number).
            type: raw
          tmpfs_mode:
            description: A tmpfs mount's file mode, like C(1777) (octal as a string) or 1023.
            type: raw
      healthcheck:
        description:
        - A healthcheck, as in a Dockerfile. Without it, the image's healthcheck applies.
        - 'Compose: C(healthcheck).'
        type: dict
        suboptions:
          test:
            description: A shell command string, or a list (C(CMD) is prepended unless it starts with C(CMD), C(CMD-SHELL)
              or C(NONE)).
            type: raw
            required: true
          interval:
            description: Time between checks, like C(30s) or C(1m30s).
            type: str
            default: 30s
          timeout:
            description: Time one check may take.
            type: str
            default: 30s
          retries:
            description: Consecutive failures before the container is unhealthy.
            type: int
            default: 3
          start_period:
            description: Grace period after start during which failures do not count.
            type: str
            default: 0s
      restart_policy:
        description:
        - Docker restart policy.
        - 'Compose: C(restart), C(deploy.restart_policy).'
        type: str
      build:
        description:
        - 'Build the image on the Docker host''s engine from a context on the controller (a stack''s resource only: the
          container module refuses it).'
        - Without C(image), the image is tagged C(<stack>-<resource>:clockwork). It is rebuilt only when the context,
          the Dockerfile or the arguments change (a content hash as the image's label); a rebuilt image changes the container's
          image, which recreates it.
        - The files the stack writes into the context's directory (its diagram C(<stack>.stack.md), C(clockwork.lock.yml))
          are no part of the context. An image the stack built is removed once no tag names it, no container is made from
          it and no kept release runs it.
        type: dict
        suboptions:
          context:
            description: The build context, a directory on the controller (relative to the playbook's directory, or its
              files/).
            type: str
            required: true
          dockerfile:
            description: The Dockerfile's path inside the context.
            type: str
            default: Dockerfile
          target:
            description: The build stage to build.
            type: str
          args:
            description: Build arguments (a value whose name says secret is masked in output).
            type: dict
            default: {}
          labels:
            description: Labels of the image (not io.clockwork.*).
            type: dict
            default: {}
          archive:
            description: Set by the stack action plugin (where the context's tar is on the Docker host); never set it.
            type: str
          content_hash:
            description: Set by the stack action plugin (the context's content hash); never set it.
            type: str
      tmpfs:
        description:
        - Paths inside the container that are tmpfs mounts, each as C(/path) or C(/path:options) (C(size=64m,mode=1777)).
        - 'On Swarm, tmpfs mounts of the service (services.py): options C(size), C(mode) and C(ro) only.'
        - 'Compose: C(tmpfs).'
        type: list
        elements: str
      shm_size:
        description:
        - Size of C(/dev/shm), like C(256m) or C(1g) (the engine's default 64m).
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(shm_size).'
        type: raw
      networks:
        description:
        - Networks to join, each with DNS aliases. The first is joined at creation, the others after.
        - A missing attachment is added without recreating the container.
        - C(networks[].ipv4_address) is the container's address on that network (a network with a subnet); the network
          of the highest C(networks[].priority) is joined first.
        - 'Compose: C(networks).'
        type: list
        elements: dict
        suboptions:
          name:
            description: Network name.
            type: str
            required: true
          aliases:
            description: DNS aliases on that network.
            type: list
            elements: str
            default: []
          ipv4_address:
            description: The container's IPv4 address on that network.
            type: str
          priority:
            description: Networks of a higher priority are joined first (default 0).
            type: int
      network_mode:
        description:
        - C(host) (the host's network, a grant of the host), C(none) (no network) or C(container:<name>) (another container's).
        - 'Set, the container joins no network: C(networks) must be empty, and a stack''s resource is not on the stack''s
          default network. Not on Swarm.'
        - 'Compose: C(network_mode).'
        type: str
      hostname:
        description:
        - The container's host name. Not set, the engine's (its short id).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Hostname) (not
          declared, that field is left as it is).'
        - 'Compose: C(hostname).'
        type: str
      domainname:
        description:
        - The container's domain name.
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(domainname).'
        type: str
      mac_address:
        description:
        - The container's MAC address on the network it joins first.
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(mac_address).'
        type: str
      extra_hosts:
        description:
        - Lines added to the container's C(/etc/hosts), as a list of C(host:address) or a mapping of host to address.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Hosts) (not declared,
          that field is left as it is).'
        - 'Compose: C(extra_hosts).'
        type: raw
      dns:
        description:
        - DNS servers of the container, instead of the engine's.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.DNSConfig.Nameservers)
          (not declared, that field is left as it is).'
        - 'Compose: C(dns).'
        type: list
        elements: str
      dns_search:
        description:
        - DNS search domains of the container.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.DNSConfig.Search)
          (not declared, that field is left as it is).'
        - 'Compose: C(dns_search).'
        type: list
        elements: str
      dns_opt:
        description:
        - Options of the container's resolver (C(resolv.conf)), like C(ndots:2).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.DNSConfig.Options)
          (not declared, that field is left as it is).'
        - 'Compose: C(dns_opt).'
        type: list
        elements: str
      privileged:
        description:
        - Run the container privileged, as C(docker run --privileged). This grants the container the host, with every
          capability and every device of the host.
        - Not on Swarm (engine swarm of M(clockwork.connections.stack) refuses it before any change).
        - 'Compose: C(privileged).'
        type: bool
      cap_add:
        description:
        - Linux capabilities added to the container's, like C(NET_BIND_SERVICE) or C(CHOWN); C(ALL) for every one.
        - Each grants the container part of the host's power (C(SYS_ADMIN), C(NET_ADMIN) and C(SYS_PTRACE) much of it).
        - A name is the same with or without C(CAP_) and in any case; the order does not matter.
        - Engine swarm of M(clockwork.connections.stack), the service's capabilities (Docker API 1.41, engine 20.10, or
          newer).
        - 'Compose: C(cap_add).'
        type: list
        elements: str
      cap_drop:
        description:
        - Linux capabilities taken from the container, like C(ALL) or C(NET_RAW); named as in C(cap_add).
        - C(ALL) dropped with a short C(cap_add) gives the container only what it needs.
        - 'Compose: C(cap_drop).'
        type: list
        elements: str
      devices:
        description:
        - Devices of the host given to the container, as C(/dev/x), C(/dev/x:/dev/y) (at another path inside) or C(/dev/x:/dev/y:rwm)
          (cgroup permissions, default C(rwm)).
        - Each grants the container that device of the host. Not on Swarm.
        - 'Compose: C(devices).'
        type: list
        elements: str
      pid_mode:
        description:
        - The container's PID namespace.
        - C(host) shares the host's, which grants the container a view of every process of the host (and the power to
          signal them); C(container:<name>) shares another container's.
        - Not set, the container has a namespace of its own. Not on Swarm.
        - 'Compose: C(pid).'
        type: str
      ipc_mode:
        description:
        - The container's IPC namespace.
        - C(host) shares the host's, which grants the container the host's shared memory; also C(none), C(private), C(shareable)
          or C(container:<name>).
        - Not set, the engine's default (C(private) or C(shareable), by engine), which is then never compared. Not on
          Swarm.
        - 'Compose: C(ipc).'
        type: str
      userns_mode:
        description:
        - C(host) runs the container outside the engine's user namespace remapping (C(userns-remap)), which grants the
          container's root the host's root.
        - Not set, the engine's. Not on Swarm.
        - 'Compose: C(userns_mode).'
        type: str
      read_only:
        description:
        - Mount the container's root file system read-only.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.ReadOnly) (not
          declared, that field is left as it is).'
        - 'Compose: C(read_only).'
        type: bool
      security_opt:
        description:
        - Security options, like C(no-new-privileges:true) or C(apparmor=profile).
        - 'C(seccomp=unconfined), C(apparmor=unconfined) or C(label=disable) take a confinement away: a grant of the host,
          as C(privileged) is.'
        - 'On Swarm, SELinux labels only (C(label=type:...), C(label=disable) ...): the service''s C(Privileges.SELinuxContext);
          any other is refused.'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Privileges.SELinuxContext)
          (not declared, that field is left as it is).'
        - 'Compose: C(security_opt).'
        type: list
        elements: str
      user:
        description:
        - The user (and group) the main process runs as, C(name), C(uid) or C(uid:gid). Not set, the image's.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.User) (not declared,
          that field is left as it is).'
        - 'Compose: C(user).'
        type: str
      working_dir:
        description:
        - The directory the main process starts in. Not set, the image's.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Dir) (not declared,
          that field is left as it is).'
        - 'Compose: C(working_dir).'
        type: str
      entrypoint:
        description:
        - The entrypoint, as a list or a string split like a shell would. Not set, the image's.
        - 'A declared entrypoint drops the image''s command, as C(docker run --entrypoint) does: declare C(command) with
          it when one is needed.'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Command) (not declared,
          that field is left as it is).'
        - 'Compose: C(entrypoint).'
        type: raw
      init:
        description:
        - Run an init process (C(docker-init)) as PID 1 that forwards signals and reaps zombies.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Init) (not declared,
          that field is left as it is).'
        - 'Compose: C(init).'
        type: bool
      stop_signal:
        description:
        - The signal that stops the container, like C(SIGINT) or C(SIGQUIT). Not set, the image's (else C(SIGTERM)).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.StopSignal) (not
          declared, that field is left as it is).'
        - 'Compose: C(stop_signal).'
        type: str
      stop_grace_period:
        description:
        - How long C(docker stop) waits after the stop signal before it kills the container, like C(30s) or C(1m30s) (the
          engine's default 10s).
        - A recreate, a scale-down and C(state=absent) wait that long for the old container. Engine swarm of M(clockwork.connections.stack),
          the service's stop grace period.
        - 'Compose: C(stop_grace_period).'
        type: str
      group_add:
        description:
        - Supplementary groups of the main process, by name or id.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Groups) (not declared,
          that field is left as it is).'
        - 'Compose: C(group_add).'
        type: list
        elements: str
      pull_policy:
        description:
        - 'When the image is pulled: C(missing) (the default) when it is not on the Docker host, C(always) on every run,
          C(never) (an image not there is an error).'
        - A pulled image that is another than the container's recreates it (its image drifted).
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(pull_policy).'
        type: str
      platform:
        description:
        - The platform of the image, like C(linux/amd64), for an engine that runs several.
        - 'Given to the create call; not compared on a container: the engine keeps no platform of a container (its inspect
          says the OS only), the platform chooses the image, and the image is compared by its id (another platform''s
          image is a changed image).'
        - 'On Swarm, the nodes the tasks may run on (each pulls the image for its own platform): C(os/arch), no variant.'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Placement.Platforms) (not declared,
          that field is left as it is).'
        - 'Compose: C(platform).'
        type: str
      mem_limit:
        description:
        - Memory limit, like C(512m) or C(2g) (bytes when a number).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Limits.MemoryBytes)
          (not declared, that field is left as it is).'
        - 'Compose: C(mem_limit), C(deploy.resources.limits.memory).'
        type: raw
      mem_reservation:
        description:
        - Memory soft limit (reservation), like C(256m).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Reservations.MemoryBytes)
          (not declared, that field is left as it is).'
        - 'Compose: C(mem_reservation), C(deploy.resources.reservations.memory).'
        type: raw
      cpus:
        description:
        - CPU limit in CPUs, like C(0.5) or C(2).
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Limits.NanoCPUs) (not
          declared, that field is left as it is).'
        - 'Compose: C(cpus), C(deploy.resources.limits.cpus).'
        type: float
      cpu_shares:
        description:
        - CPU shares, the container's relative weight (the engine's default 1024).
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(cpu_shares).'
        type: int
      pids_limit:
        description:
        - 'The most processes the container may run (0 or less: no limit).'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Limits.Pids) (not declared,
          that field is left as it is).'
        - 'Compose: C(pids_limit), C(deploy.resources.limits.pids).'
        type: int
      oom_score_adj:
        description:
        - The OOM killer's preference for the container's processes, -1000 to 1000.
        - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
        - 'Compose: C(oom_score_adj).'
        type: int
      ulimits:
        description:
        - 'Resource limits of the processes, each C(name: number) or C(name: {soft: n, hard: m}), like C(nofile: {soft:
          20000, hard: 40000}).'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Ulimits) (not declared,
          that field is left as it is).'
        - 'Compose: C(ulimits).'
        type: dict
      sysctls:
        description:
        - 'Kernel parameters of the container''s namespaces, like C(net.core.somaxconn: 1024).'
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Sysctls) (not declared,
          that field is left as it is).'
        - 'Compose: C(sysctls).'
        type: dict
      logging:
        description:
        - 'The log driver and its options, like C({driver: json-file, options: {max-size: 10m}}).'
        - Not set, the engine's default driver, which is then not compared.
        - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.LogDriver) (not declared, that
          field is left as it is).'
        - 'Compose: C(logging).'
        type: dict
        suboptions:
          driver:
            description: The log driver, like C(json-file), C(local) or C(syslog).
            type: str
            required: true
          options:
            description: 'The driver''s options, like C(max-size: 10m).'
            type: dict
            default: {}
      env:
        description:
        - Environment variables. Values are turned into strings.
        - 'Compose: C(environment), C(env_file).'
        type: dict
      labels:
        description:
        - Extra labels; the ownership labels are always added.
        - A label with the prefix C(io.clockwork.) is refused before anything is changed, as those labels are the collection's
          own.
        - 'Compose: C(labels).'
        type: dict
      # END container options
  connections:
    description:
      - The connections, each with C(type), C(from), C(to) and the options of that type's module
        (M(clockwork.connections.database_connection) and so on). C(stack) is the stack's name.
    type: list
    elements: dict
    default: []
    suboptions:
      aliases:
        description: Extra DNS aliases for C(to_resource) on the network.
        type: list
        elements: str
      ca_path:
        description: Where C(from_resource) finds the CA certificate.
        type: str
      cert_path:
        description: Where C(to_resource) finds its certificate.
        type: str
      condition:
        description:
        - C(started) waits until it runs; C(healthy) until its healthcheck passes; C(completed_successfully)
          until a one-shot container has exited with code 0.
        - Defaults to C(healthy) when C(to_resource) has a healthcheck, else C(started).
        type: str
      connection_string_template:
        description:
        - Template with the placeholders C({user}), C({password}), C({host}), C({port}) and C({database});
          user, password and database are URL-encoded. An unknown placeholder is an error naming it.
        - Defaults to C(postgresql://{user}:{password}@{host}:{port}/{database}) for PostgreSQL, C(mysql://{user}:{password}@{host}:{port}/{database})
          for MySQL, and for Redis to C(redis://:{password}@{host}:{port}/{database}), or C(redis://{host}:{port}/{database})
          without a password.
        type: str
      content:
        description: Content of the file at C(source_path), written when it differs.
        type: str
      create_volume:
        description: Create C(volume_name) when it does not exist; without it a missing volume is an error.
        type: bool
      cross_database:
        description:
        - MySQL and MariaDB - a file with C(USE) of another database, or a statement that names another
          database (C(other.orders), C(other.orders.id), C(other.f()), C(GRANT ... ON other.*), C(CREATE
          DATABASE other)) is refused before any change, naming the file, the line and the name, unless
          this is true. C(USE) moves the session, and with it the tracking rows and every later file; C(information_schema)
          may be read.
        - With it, the session is moved back to C(database_name) after each file, before its record.
        type: bool
      database_name:
        description: Database name (PostgreSQL, MySQL) or number (Redis). Defaults to the user name, or
          C(0) for Redis.
        type: str
      description:
        description:
        - What the connection is for, in plain words. Fields left out can be completed from it (see the
          collection's README on field completion).
        type: str
      driver:
        description: 'Volume resource only: the volume driver.'
        type: str
      enable_ipv6:
        description: Enable IPv6 on the network (give an IPv6 C(subnet) on engines without a default IPv6
          pool).
        type: bool
      engine:
        description: The database engine. C(mariadb) is the C(mysql) engine (MySQL 8, MariaDB 10.6 and later).
        type: str
      env:
        description:
        - Connection parts as env variables of C(from_resource), for applications that read parts rather
          than a URL, for example C(WORDPRESS_DB_HOST) set to the template C({host}:{port}) and C(WORDPRESS_DB_PASSWORD)
          to C({password}).
        - A mapping of variable name to a template with the placeholders of C(connection_string_template),
          filled with the values as they are (not URL-encoded). An unknown placeholder, or a name that another
          connection or the container's own env sets differently, is refused before any change.
        - A value holding C({password}) is masked everywhere and follows a password rotation.
        type: dict
      env_var_name:
        description:
        - 'Database, network and service_mesh connections: the env variable contributed to C(from_resource).
          Defaults to C(DATABASE_URL) (C(REDIS_URL) for Redis), C(<TO>_HOST) and C(<SERVICE>_URL).'
        - The empty string contributes none (a database connection then gives only the parts of C(env)).
        type: str
      from_resource:
        description:
        - The container that uses the connection and receives its contribution (env, mounts, networks).
        - It may not exist yet; connections run before it is created so their contributions can be merged
          in.
        type: str
        aliases:
        - from
      gateway:
        description: IPAM gateway address inside C(subnet).
        type: str
      health_check_path:
        description: Path requested by the health check.
        type: str
      health_check_timeout:
        description: Seconds during which a failing health check is retried.
        type: int
      internal:
        description: An internal network has no route out of the host.
        type: bool
      key_path:
        description: Where C(to_resource) finds its key.
        type: str
      load_balancing:
        description:
        - C(round_robin) is the only value Docker can honour; any other is rejected. Docker's embedded DNS
          answers a name shared by several containers with all of their addresses, rotated, so clients spread
          over them. No proxy is involved.
        type: str
      login_host:
        description:
        - Address where this module reaches the server. Defaults to the C(to_resource) container's address,
          which the Docker host can reach on Linux; set it (with a published port) on Docker Desktop.
        type: str
      login_port:
        description: Port for C(login_host). Defaults to the container port.
        type: int
      migration_timeout:
        description:
        - Seconds a schema or migration file may run on PostgreSQL (C(statement_timeout) of its transaction),
          or each statement of a file on MySQL; one that takes longer is stopped, and the error names the
          file (and on MySQL the statement and its line).
        type: int
      migrations:
        description:
        - The migrations of C(migrations_dir), as read on the controller by the action plugin; applied in
          natural order of their names.
        type: list
        elements: dict
        suboptions:
          name:
            description: The migration's file name, recorded with its checksum.
            type: str
            required: true
          content:
            description: Its SQL.
            type: str
            required: true
      migrations_dir:
        description:
        - Directory of C(*.sql) migrations on the controller, each applied once in natural version order;
          read into C(migrations) by the action plugin, like C(schema_file). PostgreSQL and MySQL only.
        type: path
      mode:
        description: File mode for C(source_path), like C(0644).
        type: raw
      mount_path:
        description: Absolute path inside the container. Required unless completed from C(description).
        type: str
      network_name:
        description: Name of the Docker network. Required unless completed from C(description).
        type: str
      owner:
        description: Owner (name or uid) of C(source_path) on the Docker host.
        type: str
      password:
        description: Password. Never shown in any output.
        type: str
      password_delivery:
        description:
        - How C(from_resource) gets each value holding the password (the connection string and the parts
          of C(env) with C({password})).
        - V(env) puts it in the env.
        - V(file) writes it to a file of mode 0400 under C(~/.clockwork/<stack>/secrets/) on the Docker
          host, mounted read-only at C(/run/secrets/<NAME>), and sets C(<NAME>_FILE) to that path, as Compose's
          secrets do, so that C(docker inspect) shows no password. A rotation rewrites the file and restarts
          the running C(from_resource). On Swarm, every secret already reaches a service as such a file.
        type: str
      port:
        description: The port of C(to_resource). Discovered when not given; none found is an error that
          says so.
        type: int
      protocol:
        description: URL scheme. C(http) becomes C(https) with C(tls_enabled). C(grpc) and C(tcp) get a
          TCP check instead of HTTP.
        type: str
      read_only:
        description: Mount read-only into C(from_resource).
        type: bool
      reapply_schema:
        description: Apply C(schema_file) again when its content changed since it was applied.
        type: bool
      rehearse:
        description:
        - MySQL and MariaDB - whether the files of a run are rehearsed on a copy of the database first,
          with a snapshot kept (see the description). The copy needs a user that may create a database,
          the connection's own or root with the password the server's env gives (C(MARIADB_ROOT_PASSWORD),
          C(MYSQL_ROOT_PASSWORD)).
        - V(auto) rehearses when the database holds tables and is under C(snapshot_max_mb), and a copy can
          stand in for it (no file names the database itself, as C(shop.t), nor, with C(cross_database),
          another one); otherwise, or without such a user, the files are applied without a rehearsal and
          the result says why.
        - V(always) rehearses whatever the size, and refuses before any change when it cannot.
        - V(never) applies the files without a rehearsal or snapshot.
        - It costs a dump and a load of the database on each run that applies files, and the snapshot's
          space.
        type: str
      restore_snapshot:
        description:
        - PostgreSQL, MySQL, MariaDB and Redis (a copy kept with C(snapshot)) - put C(database_name) back as
          this snapshot (of the stack's volume) has it, and do nothing else - its state before is kept as a
          snapshot first, then the database is dropped, created again and loaded. Rows written since the
          snapshot are gone, so a stack never does it; the stack role's C(clockwork_restore) variable sets it.
        type: str
      schema_content:
        description:
        - The SQL of C(schema_file), recorded under C(schema_file)'s base name. Set by the action plugin
          on the controller; give it directly only when calling the module without the collection's action
          plugin.
        type: str
      schema_file:
        description:
        - SQL file applied once, a file of the controller beside the playbook. A relative path is looked
          up in the role's or playbook's C(files/), then the playbook's directory. The action plugin reads
          it into C(schema_content), so a remote Docker host needs no copy of it. PostgreSQL and MySQL only.
        type: path
      service_name:
        description: Host name in the URL and in the env name. Defaults to the C(to_resource) name; it must
          resolve in C(from_resource).
        type: str
      snapshot:
        description:
        - Redis - keep an RDB copy of the server's data (C(redis-cli --rdb) inside its container) in the stack's volume
          C(<stack>-clockwork-snapshots) on each run of the stack that changes something, recorded in its release
          (the last C(snapshot_keep)); a rollback with C(restore_data), or C(restore_snapshot), puts one back - the
          server stopped, its RDB file replaced, started again. A server with C(appendonly yes) is refused. Check
          mode keeps none. Default C(false).
        - PostgreSQL, MySQL and MariaDB keep their snapshots before their files by themselves; C(true) is refused
          for them.
        type: bool
      snapshot_keep:
        description:
        - PostgreSQL, MySQL and MariaDB (and Redis with C(snapshot)) - how many snapshots of each database the
          stack's volume keeps, the newest.
        - Beyond those, a snapshot that one of the stack's kept releases records (the last O(releases_kept)) is kept
          as long as that release is, so a rollback with O(restore_data) to any kept release finds it; once its
          release is pruned, it goes at the next snapshot of its database. Check mode removes none.
        type: int
      snapshot_max_mb:
        description:
        - MySQL and MariaDB - with C(rehearse=auto), a database whose tables take more megabytes than this
          (data and indexes, as C(information_schema.tables) counts them) is not rehearsed nor snapshotted.
        - PostgreSQL - a database larger than this is not snapshotted before its files (and says so).
        type: int
      source_path:
        description:
        - File or directory to bind-mount. An absolute path is a path on the Docker host.
        - A relative path names a file of the controller, looked up in the role's or playbook's C(files/),
          then the playbook's directory. When the Docker host is the controller itself, that file is mounted
          where it is. On a remote Docker host its content is sent with the task and written under the stack's
          base directory there (C(~/.clockwork/<stack>) of the remote user), then mounted; a directory must
          already be on the Docker host, named by an absolute path.
        - With C(content), the file the connection writes (a relative one under the playbook's directory,
          or the stack's base directory on a remote Docker host).
        type: path
      subnet:
        description: IPAM subnet in CIDR form, like C(172.28.0.0/16). Left to the engine when not given.
        type: str
      timeout:
        description:
        - Seconds to wait for the login, for clockwork's schema lock, and for a lock a statement waits for
          (C(lock_timeout) on PostgreSQL, C(lock_wait_timeout) and C(innodb_lock_wait_timeout) on MySQL).
        type: int
      tls_dir:
        description: Directory on the Docker host for the stack's CA, keys and certificates. Defaults to
          C(~/.clockwork/<stack>/tls).
        type: path
      tls_enabled:
        description: Generate TLS material and use C(https).
        type: bool
      to_resource:
        description:
        - The resource the connection points at. It must exist and belong to C(stack), except in check mode,
          where a missing one is reported instead.
        type: str
        aliases:
        - to
      type:
        description: The connection type, or the resource type.
        type: str
        choices:
        - database
        - dependency
        - file
        - network
        - service_mesh
        required: true
      username:
        description: User to log in as. Defaults to C(postgres) for PostgreSQL, C(root) for MySQL; none
          for Redis.
        type: str
      volume_driver:
        description: Driver for a volume this module creates. An existing volume with another driver is
          an error.
        type: str
      volume_name:
        description: 'Volume resource, or file connection: the volume''s name (a volume resource defaults
          to its own name).'
        type: str
      wait_for_ready:
        description: Wait for a real login, retried until C(timeout); without it one attempt is made.
        type: bool
attributes:
  check_mode:
    support: full
    description: Nothing is created, changed, written or executed; the result lists what would be done.
  diff_mode:
    support: full
    description: One diff per changed container, network, file and connection; secret env values masked.
"""

EXAMPLES = r"""
- name: A web app and its database, wired
  clockwork.connections.stack:
    name: shop
    resources:
      - name: db
        image: postgres:16
        env: {POSTGRES_PASSWORD: "{{ vault_db_password }}", POSTGRES_DB: shop}
        healthcheck: {test: pg_isready -U postgres, interval: 2s}
      - name: web
        image: nginx:1.27
        ports: ["8080:80"]
    connections:
      - type: database
        from: web
        to: db
        password: "{{ vault_db_password }}"
        database_name: shop
        schema_file: schema.sql

- name: Prove it works, changing nothing
  clockwork.connections.stack:
    name: shop
    state: verified
    resources: "{{ shop_resources }}"
    connections: "{{ shop_connections }}"

- name: Back to the release before the current one, databases as they are
  clockwork.connections.stack:
    name: shop
    state: rolled_back
    release: previous

- name: Back to release 3 exactly
  clockwork.connections.stack:
    name: shop
    state: rolled_back
    release: "3"

- name: Tear it down, keeping the volumes
  clockwork.connections.stack:
    name: shop
    state: absent
    resources: "{{ shop_resources }}"
"""

RETURN = r"""
order:
  description: The deployment order.
  returned: always
  type: list
  elements: str
  sample: [postgres, redis, config_file, storage, api, frontend]
plan:
  description:
    - The plan that was applied (or, in check mode, would be), as plain data with env names but never their values.
    - C(order), C(networks), C(volumes), C(files); per container its image, ports, env names, mounts, networks
      with aliases and the connections it is the C(from) of; per database connection the SQL files with their
      sha256.
  returned: with O(state=present) or O(state=verified)
  type: dict
  sample:
    order: [postgres, api]
    networks: [shop_default, backend-network]
    volumes: [app-shared-data]
    containers: {api: {image: "nginx:1.27", env: [DATABASE_URL], networks: {shop_default: [api]}}}
    sql: {"connection database api -> postgres": [{kind: schema, name: schema.sql, sha256: "9f2c..."}]}
entries:
  description: Per resource, network, volume and connection, what was done or would be done.
  returned: always
  type: list
  elements: dict
  sample:
    - {kind: container, name: api, changed: true, actions: [recreate, start], reasons: [env LOG_LEVEL]}
    - {kind: connection, name: network api -> redis, changed: false, actions: [], reasons: []}
completion:
  description: Per connection, the fields completed from its description and by whom (C(llm) or C(local)).
  returned: when fields were completed
  type: dict
engine:
  description: C(swarm) when the stack was applied as Swarm services (O(engine=swarm)).
  returned: with O(engine=swarm)
  type: str
  sample: swarm
waited_for_lock:
  description:
    - Seconds this run waited for another run of the same stack (from any controller) to finish; each stack
      has one lock on the Docker engine, a never-started container C(clockwork-lock-<name>).
  returned: when the run waited
  type: float
verified:
  description: True when O(verify) ran the checks in this call; C(checks) then holds their reports.
  returned: with O(verify)
  type: bool
checks:
  description: With O(state=verified) or O(verify), one report per check; otherwise the checks that would run.
  returned: always
  type: list
  elements: dict
release:
  description:
    - The release this apply recorded in the Docker engine; C(number), C(pruned) (the numbers removed to keep
      O(releases_kept)), C(path) (the image that holds it, C(clockwork-releases:<name>.<number>)).
    - In check mode the number a run would record (nothing is written).
    - After O(state=rolled_back), also C(rolled_back_to), the release it returned to.
  returned: when O(state=present) or O(state=rolled_back) and something changed
  type: dict
returned_to:
  description: After a failed O(state=present), the release the stack went back to (the task fails).
  returned: when a failed apply went back
  type: int
  sample: 4
went_back:
  description: After a failed O(state=present), what went back, a line per container.
  returned: when a failed apply went back
  type: list
  elements: str
  sample: ["replace start-first frontend", "remove worker"]
rolled_back_to:
  description: With O(state=rolled_back), the number of the release the stack was returned to.
  returned: with O(state=rolled_back)
  type: int
  sample: 3
summary:
  description:
    - The run in lines, as the P(clockwork.connections.stack_summary#filter) filter words them (the role's report
      shows them); with O(state=verified), the checks' lines only. Made by the action plugin, on either path.
  returned: on success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.clockwork.connections.plugins.module_utils.masking import declared_secrets
from ansible_collections.clockwork.connections.plugins.module_utils.module_runner import run_module
from ansible_collections.clockwork.connections.plugins.module_utils.stack import STACK_ARGUMENT_SPEC, run_stack


def main():
    module = AnsibleModule(argument_spec=STACK_ARGUMENT_SPEC, supports_check_mode=True)
    secrets = declared_secrets(module.params["resources"], module.params["connections"])
    # In check mode run_module gives a dry run's gateway: the stack runs on it as for real.
    run_module(module, lambda engine: run_stack(engine, module.params, diff=module._diff), secrets)


if __name__ == "__main__":
    main()
