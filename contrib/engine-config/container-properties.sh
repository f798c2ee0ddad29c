#!/bin/sh
# On the Engine host: add the container custom properties to
# UserDefinedVMProperties for each cluster version given (default 4.7),
# keeping the properties other vdsm hooks set, then restart Engine.
#
#   container-properties.sh [4.6 4.7 ...]
#
# Admins then pick containerType (a drop-down) and set containerImage and
# the others in the VM dialog's Custom Properties tab.
set -eu
here=$(dirname "$0")
for cver in ${@:-4.7}; do
    current=$(engine-config -g UserDefinedVMProperties --cver="$cver" |
        sed -n 's/^UserDefinedVMProperties: \(.*\) version: .*/\1/p')
    merged=$(python3 "$here/merge_properties.py" "$current")
    engine-config -s UserDefinedVMProperties="$merged" --cver="$cver"
    echo "cluster $cver: $merged"
done
echo "Now: systemctl restart ovirt-engine"
