#!/bin/sh
# On the Engine host: add the container custom properties to
# UserDefinedVMProperties at every cluster level engine-config lists (or
# at the levels given), keeping the properties other vdsm hooks set, then
# restart Engine.
#
#   container-properties.sh [4.7 4.8 ...]
#
# engine-config -g KEY prints "KEY: <value> version: <level>" per level;
# engine-config -g KEY --cver=LEVEL prints the bare value
# (ovirt-engine EngineConfigLogic.java, printAllValuesForKey and
# printKeyWithSpecifiedVersion): the levels come from the first, the
# values from the second.  merge_properties.py replaces only the
# container* properties and refuses a value it cannot parse, so nothing
# is written that would lose another hook's properties.
#
# Admins then pick containerType (a drop-down) and set containerImage and
# the others in the VM dialog's Custom Properties tab.
set -eu
here=$(dirname "$(readlink -f "$0")")
python=${PYTHON:-/usr/bin/python3}
key=UserDefinedVMProperties
engine_config=${ENGINE_CONFIG:-engine-config}

if [ $# -gt 0 ]; then
    levels="$*"
else
    listing=$("$engine_config" -g "$key")
    levels=$(printf '%s\n' "$listing" |
        "$python" "$here/merge_properties.py" --levels)
fi
if [ -z "$levels" ]; then
    echo "engine-config lists no cluster level for $key" >&2
    exit 1
fi
for cver in $levels; do
    current=$("$engine_config" -g "$key" --cver="$cver")
    merged=$("$python" "$here/merge_properties.py" "$current")
    "$engine_config" -s "$key=$merged" --cver="$cver"
    echo "cluster $cver: $merged"
done
echo "Now: systemctl restart ovirt-engine"
