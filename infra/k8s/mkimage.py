#!/usr/bin/env python3
"""Write a single-layer OCI image layout tar that `ctr images import` accepts, with no registry,
image tool or daemon: python3's standard library only.

  mkimage.py --name REF --out FILE.tar --rootfs DIR
             [--entrypoint JSON] [--cmd JSON] [--env K=V]... [--workdir DIR] [--annotation K=V]...
  mkimage.py --name REF --out FILE.tar --layer-tar TAR --annotation K=V...

--rootfs packs DIR as the layer. --layer-tar uses an existing tar as the layer blob unchanged: that is
how a kubelet checkpoint tar becomes a checkpoint image (with
--annotation org.criu.checkpoint.container.name=<container>). Annotations go on the manifest AND on
the index.json descriptor, because containerd reads them from the image's target descriptor after
import, and that is the manifest.

Why these choices:
* The layer is an uncompressed tar (application/vnd.oci.image.layer.v1.tar): gzip would cost tens of
  seconds for a 300 MB rootfs on two cores, and the image never leaves this host.
* The layer is packed by our own walker instead of tarfile.add: sorted entries, uid/gid 0, no user
  names, mtime 0, so unchanged inputs give the same digest; and no passwd lookup per file.
* The layer's sha256 is computed while it is written, so a big rootfs is read once.

Prints one JSON line on stdout: name, manifest digest, layer digest and size.
"""
import argparse
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

BUF = 1 << 20
MEDIA_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
MEDIA_CONFIG = 'application/vnd.oci.image.config.v1+json'
MEDIA_LAYER = 'application/vnd.oci.image.layer.v1.tar'
DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


class HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, f):
        self.f, self.h, self.n = f, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)

    def tell(self):
        return self.n


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while chunk := f.read(BUF):
            h.update(chunk)
    return h.hexdigest()


def pack_rootfs(root, out):
    """Tar ROOT into the open binary file OUT; returns (sha256 hex, size)."""
    w = HashingWriter(out)
    seen = {}  # (dev, ino) -> first arcname, so hard links inside the tree stay links
    with tarfile.open(fileobj=w, mode='w', format=tarfile.PAX_FORMAT, copybufsize=BUF) as t:
        def add(path, arc):
            st = os.lstat(path)
            ti = tarfile.TarInfo(arc)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.mtime = 0
            if stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
                with os.scandir(path) as it:
                    names = sorted(e.name for e in it)
                for n in names:
                    add(os.path.join(path, n), f'{arc}/{n}')
            elif stat.S_ISLNK(st.st_mode):
                ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
                t.addfile(ti)
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    ti.type, ti.linkname = tarfile.LNKTYPE, seen[key]
                    t.addfile(ti)
                    return
                seen[key] = arc
                ti.size = st.st_size
                with open(path, 'rb') as f:
                    t.addfile(ti, f)
            else:
                # Devices, fifos, sockets: a rootfs for runc needs none (runc makes /dev).
                print(f'mkimage: skipping special file {path}', file=sys.stderr)

        with os.scandir(root) as it:
            top = sorted(e.name for e in it)
        for n in top:
            add(os.path.join(root, n), n)
    return w.h.hexdigest(), w.n


def kv_list(items):
    out = {}
    for kv in items:
        k, sep, v = kv.partition('=')
        if not sep or not k:
            sys.exit(f'mkimage: expected KEY=VALUE, got {kv!r}')
        out[k] = v
    return out


def blob(obj):
    b = json.dumps(obj, separators=(',', ':'), sort_keys=True).encode()
    return b, hashlib.sha256(b).hexdigest()


def tar_add_bytes(t, name, data):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), 0o644, 0
    t.addfile(ti, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--name', required=True, help='image reference, e.g. localhost/ms2m:1a2b3c')
    ap.add_argument('--out', required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--rootfs')
    src.add_argument('--layer-tar')
    ap.add_argument('--entrypoint', help='JSON array')
    ap.add_argument('--cmd', help='JSON array')
    ap.add_argument('--env', action='append', default=[])
    ap.add_argument('--workdir', default='/')
    ap.add_argument('--annotation', action='append', default=[])
    a = ap.parse_args()
    ann = kv_list(a.annotation)
    kv_list(a.env)  # validate only: the config keeps the K=V strings

    out = os.path.abspath(a.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp_layer = None
    if a.layer_tar:
        layer_path = a.layer_tar
        ldig, lsize = sha256_file(layer_path), os.path.getsize(layer_path)
    else:
        if not os.path.isdir(a.rootfs):
            sys.exit(f'mkimage: --rootfs {a.rootfs} is not a directory')
        tmp_layer = layer_path = out + '.layer.tmp'
        with open(tmp_layer, 'wb') as f:
            ldig, lsize = pack_rootfs(a.rootfs, f)

    config = {'Env': a.env or [DEFAULT_PATH], 'WorkingDir': a.workdir}
    if a.entrypoint:
        config['Entrypoint'] = json.loads(a.entrypoint)
    if a.cmd:
        config['Cmd'] = json.loads(a.cmd)
    cfg_b, cfg_d = blob({
        'created': '1970-01-01T00:00:00Z', 'architecture': 'amd64', 'os': 'linux', 'config': config,
        'rootfs': {'type': 'layers', 'diff_ids': [f'sha256:{ldig}']},
        'history': [{'created': '1970-01-01T00:00:00Z', 'created_by': 'infra/k8s/mkimage.py'}]})
    manifest = {'schemaVersion': 2, 'mediaType': MEDIA_MANIFEST,
                'config': {'mediaType': MEDIA_CONFIG, 'digest': f'sha256:{cfg_d}', 'size': len(cfg_b)},
                'layers': [{'mediaType': MEDIA_LAYER, 'digest': f'sha256:{ldig}', 'size': lsize}]}
    if ann:
        manifest['annotations'] = ann
    man_b, man_d = blob(manifest)
    # ref.name is the tag (as an OCI layout names its manifests); io.containerd.image.name is the full
    # reference, which is what `ctr images import` names the image after.
    idx_ann = dict(ann)
    idx_ann['org.opencontainers.image.ref.name'] = a.name.rsplit(':', 1)[-1] if ':' in a.name.rsplit('/', 1)[-1] else 'latest'
    idx_ann['io.containerd.image.name'] = a.name
    index = {'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
             'manifests': [{'mediaType': MEDIA_MANIFEST, 'digest': f'sha256:{man_d}', 'size': len(man_b),
                            'platform': {'architecture': 'amd64', 'os': 'linux'}, 'annotations': idx_ann}]}
    idx_b, _ = blob(index)

    tmp_out = out + '.tmp'
    try:
        with tarfile.open(tmp_out, 'w', format=tarfile.PAX_FORMAT, copybufsize=BUF) as t:
            tar_add_bytes(t, 'oci-layout', b'{"imageLayoutVersion":"1.0.0"}')
            tar_add_bytes(t, 'index.json', idx_b)
            for d in ('blobs', 'blobs/sha256'):
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 0
                t.addfile(ti)
            tar_add_bytes(t, f'blobs/sha256/{cfg_d}', cfg_b)
            tar_add_bytes(t, f'blobs/sha256/{man_d}', man_b)
            ti = tarfile.TarInfo(f'blobs/sha256/{ldig}')
            ti.size, ti.mode, ti.mtime = lsize, 0o644, 0
            with open(layer_path, 'rb') as f:
                t.addfile(ti, f)
        os.replace(tmp_out, out)
    finally:
        for p in (tmp_out, tmp_layer):
            if p and os.path.exists(p):
                os.unlink(p)
    print(json.dumps({'name': a.name, 'manifest': f'sha256:{man_d}', 'layer': f'sha256:{ldig}', 'layer_size': lsize}))


if __name__ == '__main__':
    main()
