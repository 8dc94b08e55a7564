/*
 * fuzz_image.c -- a whole region: the input is laid over the metadata of a
 * real populated image (superblocks, journal, bitmap, inode table,
 * directory blocks, extent arrays, xattr blocks, a symlink block), which
 * is then mounted, walked, changed a little and unmounted, and checked,
 * repaired and checked again by fsck.
 *
 * Input: [flags] [16 bytes of changes for fz_modify] [range bytes...]
 *   flags bit 0: reseal checksums after laying the bytes down
 *   flags bits 1-2: which template (clean, pending journal, orphan)
 *   flags bit 3: mount read-only
 *   flags bit 4: no changes
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

#define HDR 17

static struct fz_region rg;
static const struct fz_image *tmpl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fz_seed_dir();

	(void)argc;
	(void)argv;
	tmpl = fz_templates();
	fz_region_new(&rg, FZ_REGION_SIZE);
	if (dir) {
		static const uint8_t mods[16] = {
			0, 0, 6, 6,  2, 1, 0, 3,  7, 0, 0, 9,  6, 1, 2, 7,
		};
		for (unsigned v = 0; v < FZ_NVARIANTS; v++) {
			const struct fz_image *img = &tmpl[v];
			uint8_t *buf = malloc(HDR + img->total);
			char name[64];
			size_t n;

			buf[0] = (uint8_t)(v << 1);
			memcpy(buf + 1, mods, sizeof(mods));
			n = fz_extract(img, img->bytes, buf + HDR, img->total);
			snprintf(name, sizeof(name), "variant-%u", v);
			fz_write_seed(dir, name, buf, HDR + n);
			buf[0] |= 0x08;		/* read-only */
			snprintf(name, sizeof(name), "variant-%u-ro", v);
			fz_write_seed(dir, name, buf, HDR + n);
			free(buf);
		}
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mount_opts o = { .readonly = false };
	const struct fz_image *img;
	struct daxfs *fs;
	uint8_t flags;
	int ret;

	if (size < HDR)
		return -1;
	flags = data[0];
	img = &tmpl[((flags >> 1) & 3) % FZ_NVARIANTS];
	fz_region_load(&rg, img->bytes);
	fz_apply(img, rg.map, data + HDR, size - HDR);
	if (flags & FZ_FIX_CRC)
		fz_fix_crcs(img, rg.map);

	if (getenv("FUZZ_DUMP")) {
		/* the region this input makes, for a look with daxfsctl */
		fz_write_seed(".", getenv("FUZZ_DUMP"), rg.map, rg.size);
	}
	o.readonly = flags & 0x08;
	daxfs_clearerr();
	ret = fs_mount(rg.spec, &o, &fs);
	if (ret) {
		/* a memfd does not vanish: EIO would be a read past the end */
		FZ_ASSERT(ret < 0 && ret != -EIO);
	} else {
		fz_walk(fs, 128);
		if (!o.readonly && !(flags & 0x10)) {
			fz_modify(fs, data + 1, 16);
			fz_walk(fs, 32);
		}
		fs_unmount(fs, true);
	}
	fz_fsck_cycle(rg.spec);
	return 0;
}
