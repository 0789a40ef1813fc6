# -*- coding: utf-8 -*-
# Copyright: clockwork.connections contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stack's certificate authority and the service certificates it signs.

Keys are written 0600. A certificate is made again only when it is missing, expires
within 30 days, names other hosts than asked, or was signed by another CA. Every file and
directory is reached as a password file is (host_files): never through a symbolic link."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import datetime
import os
import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.clockwork.connections.plugins.module_utils.common import ClockworkError
from ansible_collections.clockwork.connections.plugins.module_utils.host_files import host_files_for

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

RENEW_BEFORE = datetime.timedelta(days=30)
CA_LIFETIME = datetime.timedelta(days=3650)
CERT_LIFETIME = datetime.timedelta(days=365)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _load_cert(files, path):
    data = files.read_private(path)
    return None if data is None else x509.load_pem_x509_certificate(data)


def _expiring(cert):
    return cert.not_valid_after_utc - _now() < RENEW_BEFORE


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _build(subject, issuer, public_key, signing_key, lifetime, ca, names=()):
    now = _now()
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + lifetime)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def certificate_paths(directory, service):
    """Where the CA and `service`'s certificate and key live in `directory`."""
    return {"ca": os.path.join(directory, "ca.crt"), "ca_key": os.path.join(directory, "ca.key"),
            "cert": os.path.join(directory, "%s.crt" % service), "key": os.path.join(directory, "%s.key" % service)}


def ensure_certificates(directory, stack, service, names, files):
    """Make sure `directory` holds ca.crt/ca.key and <service>.crt/.key valid for `names`, through
    `files` (the gateway's HostFiles: a dry run's writes none and reads them back as written).

    Returns (actions, paths): what was (or would be) generated, and the file paths.
    """
    if not HAS_CRYPTOGRAPHY:
        raise ClockworkError(missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    files = host_files_for(files)   # a caller that still passes check mode's flag gets the matching kind
    paths = certificate_paths(directory, service)
    actions = []
    ca = _load_cert(files, paths["ca"])
    ca_key_pem = files.read_private(paths["ca_key"])
    if ca is None or _expiring(ca) or ca_key_pem is None:
        actions.append("generate CA for stack %s" % stack)
    cert = _load_cert(files, paths["cert"])
    wanted = sorted(set(names))
    if actions or cert is None or _expiring(cert) or files.read_private(paths["key"]) is None \
            or sorted(_san_names(cert)) != wanted or (ca is not None and cert.issuer != ca.subject):
        actions.append("generate certificate for %s (%s)" % (service, ", ".join(wanted)))
    if not actions:
        return actions, paths

    # Written in place (same inode), so running containers with a bind mount see them.
    if actions[0].startswith("generate CA"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u"clockwork %s CA" % stack)])
        ca = _build(name, name, ca_key.public_key(), ca_key, CA_LIFETIME, ca=True)
        ca_key_pem = _key_pem(ca_key)
        files.write_private(paths["ca_key"], ca_key_pem, 0o600)
        files.write_private(paths["ca"], ca.public_bytes(serialization.Encoding.PEM), 0o644)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0])])
    cert = _build(subject, ca.subject, key.public_key(), ca_key, CERT_LIFETIME, ca=False, names=wanted)
    files.write_private(paths["key"], _key_pem(key), 0o600)
    files.write_private(paths["cert"], cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return actions, paths


def _san_names(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return []
