# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Written by scripts/option_docs.py from the option table (plugins/module_utils/options/): do not edit.

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):
    """The container resource's options, for the container module."""

    DOCUMENTATION = r"""
options:
  image:
    description:
    - Image reference. Pulled when absent locally; a pull failure names the image.
    - Required unless O(state=absent).
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
    default: []
  mounts:
    description:
    - Bind mounts, named volumes, anonymous volumes and tmpfs mounts.
    - 'A volume mount without a source is an anonymous volume (Compose''s C(- /path)): a recreate gives the new
      container the old one''s.'
    - O(mounts[].propagation) is a bind mount's (Compose's C(bind.propagation)), O(mounts[].nocopy) a volume's (C(volume.nocopy)),
      O(mounts[].tmpfs_size) and O(mounts[].tmpfs_mode) a tmpfs mount's.
    - 'Compose: C(volumes).'
    type: list
    elements: dict
    default: []
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
    choices:
    - 'no'
    - always
    - on-failure
    - unless-stopped
    default: 'no'
  build:
    description:
    - 'Build the image on the Docker host''s engine from a context on the controller (a stack''s resource only:
      the container module refuses it).'
    - Without O(image), the image is tagged C(<stack>-<resource>:clockwork). It is rebuilt only when the context,
      the Dockerfile or the arguments change (a content hash as the image's label); a rebuilt image changes the
      container's image, which recreates it.
    - The files the stack writes into the context's directory (its diagram C(<stack>.stack.md), C(clockwork.lock.yml))
      are no part of the context. An image the stack built is removed once no tag names it, no container is made
      from it and no kept release runs it.
    type: dict
    suboptions:
      context:
        description: The build context, a directory on the controller (relative to the playbook's directory, or
          its files/).
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
    - O(networks[].ipv4_address) is the container's address on that network (a network with a subnet); the network
      of the highest O(networks[].priority) is joined first.
    - 'Compose: C(networks).'
    type: list
    elements: dict
    default: []
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
    - 'Set, the container joins no network: O(networks) must be empty, and a stack''s resource is not on the stack''s
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
    default: false
  cap_add:
    description:
    - Linux capabilities added to the container's, like C(NET_BIND_SERVICE) or C(CHOWN); C(ALL) for every one.
    - Each grants the container part of the host's power (C(SYS_ADMIN), C(NET_ADMIN) and C(SYS_PTRACE) much of it).
    - A name is the same with or without C(CAP_) and in any case; the order does not matter.
    - Engine swarm of M(clockwork.connections.stack), the service's capabilities (Docker API 1.41, engine 20.10,
      or newer).
    - 'Compose: C(cap_add).'
    type: list
    elements: str
    default: []
  cap_drop:
    description:
    - Linux capabilities taken from the container, like C(ALL) or C(NET_RAW); named as in O(cap_add).
    - C(ALL) dropped with a short O(cap_add) gives the container only what it needs.
    - 'Compose: C(cap_drop).'
    type: list
    elements: str
    default: []
  devices:
    description:
    - Devices of the host given to the container, as C(/dev/x), C(/dev/x:/dev/y) (at another path inside) or C(/dev/x:/dev/y:rwm)
      (cgroup permissions, default C(rwm)).
    - Each grants the container that device of the host. Not on Swarm.
    - 'Compose: C(devices).'
    type: list
    elements: str
    default: []
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
    - C(host) shares the host's, which grants the container the host's shared memory; also C(none), C(private),
      C(shareable) or C(container:<name>).
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
    - 'C(seccomp=unconfined), C(apparmor=unconfined) or C(label=disable) take a confinement away: a grant of the
      host, as O(privileged) is.'
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
    - 'A declared entrypoint drops the image''s command, as C(docker run --entrypoint) does: declare O(command)
      with it when one is needed.'
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Command) (not
      declared, that field is left as it is).'
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
    - How long C(docker stop) waits after the stop signal before it kills the container, like C(30s) or C(1m30s)
      (the engine's default 10s).
    - A recreate, a scale-down and O(state=absent) wait that long for the old container. Engine swarm of M(clockwork.connections.stack),
      the service's stop grace period.
    - 'Compose: C(stop_grace_period).'
    type: str
  group_add:
    description:
    - Supplementary groups of the main process, by name or id.
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Groups) (not
      declared, that field is left as it is).'
    - 'Compose: C(group_add).'
    type: list
    elements: str
  pull_policy:
    description:
    - 'When the image is pulled: C(missing) (the default) when it is not on the Docker host, C(always) on every
      run, C(never) (an image not there is an error).'
    - A pulled image that is another than the container's recreates it (its image drifted).
    - 'Not on Swarm: engine swarm of M(clockwork.connections.stack) refuses it before any change.'
    - 'Compose: C(pull_policy).'
    type: str
    choices:
    - missing
    - always
    - never
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
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Limits.NanoCPUs)
      (not declared, that field is left as it is).'
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
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.Resources.Limits.Pids) (not
      declared, that field is left as it is).'
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
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Ulimits) (not
      declared, that field is left as it is).'
    - 'Compose: C(ulimits).'
    type: dict
  sysctls:
    description:
    - 'Kernel parameters of the container''s namespaces, like C(net.core.somaxconn: 1024).'
    - 'Engine swarm of M(clockwork.connections.stack): the service''s C(TaskTemplate.ContainerSpec.Sysctls) (not
      declared, that field is left as it is).'
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
    default: {}
  labels:
    description:
    - Extra labels; the ownership labels are always added.
    - A label with the prefix C(io.clockwork.) is refused before anything is changed, as those labels are the collection's
      own.
    - 'Compose: C(labels).'
    type: dict
    default: {}
"""
