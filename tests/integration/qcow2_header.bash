# Reading and patching qcow2 header fields, for tests that corrupt or mask
# images; sourced by lib.sh and fuse_common.bash.

be_read() {  # be_read FILE OFFSET WIDTH -> decimal
    python3 -c 'import sys
f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(int.from_bytes(f.read(int(sys.argv[3])),"big"))' "$@"
}
be_write() {  # be_write FILE OFFSET WIDTH VALUE
    python3 -c 'import sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(int(sys.argv[4]).to_bytes(int(sys.argv[3]),"big"))' "$@"
}
le_write() {  # le_write FILE OFFSET WIDTH VALUE
    python3 -c 'import sys
f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(int(sys.argv[4]).to_bytes(int(sys.argv[3]),"little"))' "$@"
}

# Clears incompatible feature bit 5 (zoned) of IMAGE in place, so qemu-img
# treats it as a plain qcow2 (callers work on a copy).
mask_zoned_bit() {
    local features
    features=$(be_read "$1" 72 8)
    be_write "$1" 72 8 $((features & ~(1 << 5)))
}
