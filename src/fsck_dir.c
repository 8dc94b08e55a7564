/*
 * fsck_dir.c -- the namespace: every directory entry, the tree (each
 * directory reachable exactly once from the root, parent pointers), what
 * is not connected (reconnected into /lost+found, which is made when
 * needed), orphans, and link counts.
 *
 * Owns: c->links, the fdir fields found/nsub/nent/reach, c->lf.  Must
 * never: read a name before its entry's slots are known to lie inside
 * the block.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsck.h"

#define BS		DAXFS_BLOCK_SIZE
#define SPB		DAXFS_SLOTS_PER_BLOCK
#define SLOT		DAXFS_SLOT_SIZE
#define BATCH		256
#define LF_PENDING	UINT64_MAX	/* check mode: a /lost+found to be */

/* a set of names: open addressing over an arena of length-prefixed names */
struct nameset {
	uint64_t *tab;			/* arena offset + 1; 0 = empty */
	uint64_t cap, count;
	uint8_t *arena;
	uint64_t used, size;
};

/* names_new -- an empty name set */
static struct nameset *names_new(void)
{
	return calloc(1, sizeof(struct nameset));
}

/* fsck_names_free -- free a name set (NULL is fine) */
void fsck_names_free(struct nameset *s)
{
	if (!s)
		return;
	free(s->tab);
	free(s->arena);
	free(s);
}

/* names_slot -- the table slot holding name, or the free one for it */
static uint64_t names_slot(const struct nameset *s, const char *name,
			   size_t len, bool *hit)
{
	uint64_t h = crc32c(0, name, len);

	for (uint64_t k = 0;; k++) {
		uint64_t i = (h + k) & (s->cap - 1);
		uint64_t t = s->tab[i];

		if (!t) {
			*hit = false;
			return i;
		}
		if (s->arena[t - 1] == len &&
		    !memcmp(s->arena + t, name, len)) {
			*hit = true;
			return i;
		}
	}
}

/* names_has -- is name in the set? */
static bool names_has(const struct nameset *s, const char *name, size_t len)
{
	bool hit;

	if (!s || !s->count)
		return false;
	names_slot(s, name, len, &hit);
	return hit;
}

/* names_add -- remember a name (1..255 bytes) */
static int names_add(struct nameset *s, const char *name, size_t len)
{
	bool hit;
	uint64_t i;

	if ((s->count + 1) * 2 > s->cap) {
		uint64_t ncap = s->cap ? s->cap * 2 : 64, *old = s->tab;
		uint64_t ocap = s->cap;

		s->tab = calloc(ncap, sizeof(*s->tab));
		if (!s->tab) {
			s->tab = old;
			return -ENOMEM;
		}
		s->cap = ncap;
		for (uint64_t k = 0; k < ocap; k++) {
			uint64_t t = old[k];

			if (t) {
				i = names_slot(s, (const char *)s->arena + t,
					       s->arena[t - 1], &hit);
				s->tab[i] = t;
			}
		}
		free(old);
	}
	if (s->used + len + 1 > s->size) {
		uint64_t nsize = MAX(s->size * 2, s->used + len + 1 + 4096);
		uint8_t *a = realloc(s->arena, nsize);

		if (!a)
			return -ENOMEM;
		s->arena = a;
		s->size = nsize;
	}
	i = names_slot(s, name, len, &hit);
	if (hit)
		return 0;
	s->arena[s->used] = (uint8_t)len;
	memcpy(s->arena + s->used + 1, name, len);
	s->tab[i] = s->used + 1;
	s->used += len + 1;
	s->count++;
	return 0;
}

/* encode -- an entry's slots, as dir.c writes them */
static void encode(uint8_t *buf, const char *name, size_t len, uint64_t ino,
		   uint8_t type)
{
	struct daxfs_ddirent h;
	uint32_t crc;

	memset(buf, 0, DAXFS_DIRENT_SLOTS(len) * SLOT);
	memset(&h, 0, sizeof(h));
	h.ino = ino;
	h.name_len = (uint8_t)len;
	h.type = type;
	h.nslots = (uint8_t)DAXFS_DIRENT_SLOTS(len);
	crc = crc32c(0, &h, sizeof(h));
	h.crc = crc32c(crc, name, len);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), name, len);
}

/*
 * dir_pblk -- region block of directory block lb.  The list is sorted and
 * contiguous from block 0 (the inode scan saw to it); *k is a cursor that
 * makes a forward sweep linear.
 */
static uint64_t dir_pblk(const struct fdir *f, uint64_t lb, uint32_t *k)
{
	if (*k >= f->next || lb < f->ext[*k].lblk)
		*k = 0;
	for (; *k < f->next; (*k)++) {
		const struct extent *e = &f->ext[*k];

		if (lb >= e->lblk && lb < e->lblk + e->len)
			return e->pblk + (lb - e->lblk);
	}
	return 0;
}

/* zap -- remove an entry: zero its slots where they are */
static int zap(struct fsck *c, uint64_t off, uint32_t slots, uint8_t *buf,
	       uint64_t buf_off, bool *wr)
{
	static const uint8_t zero[5 * SLOT];

	if (!c->repair)
		return 0;
	if (buf && off >= buf_off && off < buf_off + BS) {
		memset(buf + (off - buf_off), 0, (size_t)slots * SLOT);
		*wr = true;
		return 0;
	}
	return fsck_write(c, off, zero, (uint64_t)slots * SLOT);
}

/* scan_ctx -- the directory block being scanned */
struct scan_ctx {
	struct fdir *f;
	uint8_t *buf;
	uint64_t off;			/* region offset of buf */
	uint64_t lb;
	struct nameset *names;
	bool wr;
};

/*
 * second_dir_entry -- a directory found twice: keep the entry its parent
 * pointer agrees with, remove the other.  True if the new entry (at off,
 * in s->f) is kept.
 */
static bool second_dir_entry(struct fsck *c, struct scan_ctx *s,
			     struct fdir *x, uint64_t off, uint32_t slots)
{
	struct fdir *old = fsck_dir_find(c, x->found);
	bool take_new = x->found != x->parent && s->f->ino == x->parent;
	int ret;

	if (take_new) {
		ret = zap(c, x->entry_off, x->entry_slots, s->buf, s->off,
			  &s->wr);
		if (old) {
			old->nsub--;
			old->nent--;
		}
	} else {
		ret = zap(c, off, slots, s->buf, s->off, &s->wr);
	}
	fsck_problem(c, ret, take_new ? "removed the first" :
		     "removed the second", "directory %llu has more than one "
		     "entry (in directories %llu and %llu)",
		     (unsigned long long)x->ino,
		     (unsigned long long)x->found,
		     (unsigned long long)s->f->ino);
	return take_new;
}

/* scan_entry -- check the entry at slot; returns the slots it spans */
static uint32_t scan_entry(struct fsck *c, struct scan_ctx *s, uint32_t slot)
{
	struct daxfs_ddirent de;
	const char *name = (const char *)s->buf + slot * SLOT + sizeof(de);
	uint64_t dino = s->f->ino, off = s->off + (uint64_t)slot * SLOT;
	const char *why = NULL;
	char nm[1100];
	uint16_t st;
	uint8_t type;
	int ret;

	memcpy(&de, s->buf + slot * SLOT, sizeof(de));
	if (!de.name_len || de.nslots != DAXFS_DIRENT_SLOTS(de.name_len) ||
	    slot + de.nslots > SPB) {
		ret = zap(c, off, 1, s->buf, s->off, &s->wr);
		fsck_problem(c, ret, "removed", "directory %llu: damaged entry "
			     "in block %llu, slot %u", (unsigned long long)dino,
			     (unsigned long long)s->lb, slot);
		return 1;
	}
	if (dirent_check((const void *)(s->buf + slot * SLOT), name)) {
		ret = zap(c, off, de.nslots, s->buf, s->off, &s->wr);
		fsck_problem(c, ret, "removed", "directory %llu: damaged entry "
			     "in block %llu, slot %u", (unsigned long long)dino,
			     (unsigned long long)s->lb, slot);
		return de.nslots;
	}
	fsck_name(name, de.name_len, nm, sizeof(nm));
	st = de.ino < c->ninodes ? c->istate[de.ino] : 0;
	if (de.ino >= c->ninodes)
		why = "an inode out of range";
	else if (!(st & IS_USED))
		why = (st & IS_BAD) ? "a damaged inode" : "a free inode";
	else if (de.ino == DAXFS_ROOT_INO)
		why = "the root directory";
	else if (de.ino == dino)
		why = "the directory itself";
	if (why) {
		ret = zap(c, off, de.nslots, s->buf, s->off, &s->wr);
		fsck_problem(c, ret, "removed", "directory %llu: entry '%s' "
			     "points to %s (%llu)", (unsigned long long)dino,
			     nm, why, (unsigned long long)de.ino);
		return de.nslots;
	}
	if (names_has(s->names, name, de.name_len)) {
		ret = zap(c, off, de.nslots, s->buf, s->off, &s->wr);
		fsck_problem(c, ret, "removed", "directory %llu: duplicate "
			     "entry '%s'", (unsigned long long)dino, nm);
		return de.nslots;
	}
	type = (uint8_t)(st & IS_TYPE);
	if (type == DT_DIR_) {
		struct fdir *x = fsck_dir_find(c, de.ino);

		if (!x)
			return de.nslots;	/* cannot happen */
		if (x->found && !second_dir_entry(c, s, x, off, de.nslots))
			return de.nslots;
		x->found = dino;
		x->entry_off = off;
		x->entry_slots = de.nslots;
		s->f->nsub++;
	}
	if (de.type != type) {
		if (c->repair) {
			char keep[DAXFS_NAME_MAX];

			memcpy(keep, name, de.name_len);
			encode(s->buf + slot * SLOT, keep, de.name_len, de.ino,
			       type);
			s->wr = true;
		}
		fsck_problem(c, 0, NULL, "directory %llu: entry '%s' has type "
			     "%u, but inode %llu has type %u",
			     (unsigned long long)dino, nm, de.type,
			     (unsigned long long)de.ino, type);
	}
	if (names_add(s->names, name, de.name_len))
		fsck_fail(c, -ENOMEM);
	if (c->links[de.ino] < UINT32_MAX)
		c->links[de.ino]++;
	s->f->nent++;
	if (dino == DAXFS_ROOT_INO && de.name_len == 10 &&
	    !memcmp(name, "lost+found", 10)) {
		if (type == DT_DIR_)
			c->lf = fsck_dir_find(c, de.ino);
		else
			c->lf_unusable = true;
	}
	return de.nslots;
}

/* scan_dir -- every entry of one directory */
static int scan_dir(struct fsck *c, struct fdir *f)
{
	struct scan_ctx s = { .f = f };
	uint32_t cur = 0;
	int ret = 0;

	s.buf = malloc(BS);
	s.names = names_new();
	if (!s.buf || !s.names) {
		free(s.buf);
		fsck_names_free(s.names);
		return fsck_fail(c, -ENOMEM);
	}
	for (s.lb = 0; s.lb < f->nb && !ret && !c->fatal; s.lb++) {
		s.off = FS_BLOCK_OFF(dir_pblk(f, s.lb, &cur));
		s.wr = false;
		ret = fsck_read(c, s.off, s.buf, BS);
		for (uint32_t slot = 0; slot < SPB && !ret && !c->fatal;) {
			uint64_t ino;

			memcpy(&ino, s.buf + slot * SLOT, sizeof(ino));
			slot += ino ? scan_entry(c, &s, slot) : 1;
		}
		if (!ret && s.wr && c->repair)
			ret = fsck_write(c, s.off, s.buf, BS);
	}
	free(s.buf);
	if (c->lf == f && !c->lf_names)
		c->lf_names = s.names;
	else
		fsck_names_free(s.names);
	return ret ? fsck_fail(c, ret) : c->fatal;
}

/* fsck_pass_dirs -- pass 2: the entries of every directory */
int fsck_pass_dirs(struct fsck *c)
{
	for (uint64_t k = 0; k < c->ndirs; k++)
		if (scan_dir(c, &c->dirs[k]))
			return c->fatal;
	return 0;
}

/* fsck_make_dir -- write a fresh, empty directory inode (repair) */
int fsck_make_dir(struct fsck *c, uint64_t ino, uint64_t parent,
		  uint32_t perm, uint32_t uid, uint32_t gid)
{
	struct daxfs_dinode old, d;
	uint64_t sec;
	uint32_t nsec;
	int ret;

	ret = fsck_inode_read(c, ino, &old);
	if (ret)
		return ret;
	memset(&d, 0, sizeof(d));
	fs_now(&sec, &nsec);
	d.mode = DAXFS_S_IFDIR | perm;
	d.uid = uid;
	d.gid = gid;
	d.nlink = 2;
	d.atime_sec = d.mtime_sec = d.ctime_sec = d.btime_sec = sec;
	d.atime_nsec = d.mtime_nsec = d.ctime_nsec = d.btime_nsec = nsec;
	d.generation = old.generation + 1;
	d.parent = parent;
	return fsck_inode_write(c, ino, &d);
}

/* add_entry -- add an entry to a directory (repair); *at gets its offset */
static int add_entry(struct fsck *c, struct fdir *f, const char *name,
		   size_t len, uint64_t ino, uint8_t type, uint64_t *at)
{
	uint32_t need = (uint32_t)DAXFS_DIRENT_SLOTS(len);
	uint8_t *buf = malloc(BS), ent[5 * SLOT];
	int64_t slot = -1;
	uint32_t cur = 0;
	uint64_t lb;
	int ret = 0;

	if (!buf)
		return fsck_fail(c, -ENOMEM);
	for (lb = f->free_hint; lb < f->nb && slot < 0 && !ret; lb++) {
		uint32_t run = 0;

		ret = fsck_read(c, FS_BLOCK_OFF(dir_pblk(f, lb, &cur)), buf,
				BS);
		for (uint32_t s = 0; s < SPB && !ret;) {
			const struct daxfs_ddirent *de =
				(const void *)(buf + s * SLOT);

			if (de->ino) {
				s += (de->nslots && s + de->nslots <= SPB) ?
				     de->nslots : 1;
				run = 0;
				continue;
			}
			if (++run == need) {
				slot = (int64_t)(s + 1 - need);
				break;
			}
			s++;
		}
		if (slot >= 0)
			break;
	}
	free(buf);
	if (ret)
		return ret;
	if (slot < 0) {
		ret = fsck_dir_grow(c, f);
		if (ret)
			return ret;
		lb = f->nb - 1;
		slot = 0;
	}
	f->free_hint = (uint32_t)MIN(lb, UINT32_MAX);
	encode(ent, name, len, ino, type);
	*at = FS_BLOCK_OFF(dir_pblk(f, lb, &cur)) + (uint64_t)slot * SLOT;
	ret = fsck_write(c, *at, ent, (uint64_t)need * SLOT);
	if (!ret)
		f->nent++;
	return ret;
}

/* add_nlink -- one more link on a directory inode (repair) */
static int add_nlink(struct fsck *c, uint64_t ino)
{
	struct daxfs_dinode d;
	int ret = fsck_inode_read(c, ino, &d);

	if (ret)
		return ret;
	d.nlink++;
	return fsck_inode_write(c, ino, &d);
}

/* make_lf -- /lost+found, created the first time it is needed */
static int make_lf(struct fsck *c, const char **why)
{
	struct fdir *root = fsck_dir_find(c, DAXFS_ROOT_INO), *lf;
	struct daxfs_dinode rd;
	uint64_t ino, at;
	int ret;

	if (c->lf)
		return 0;
	if (c->lf_unusable) {
		*why = "'lost+found' in the root is not a directory";
		return -EEXIST;
	}
	for (ino = DAXFS_ROOT_INO + 1; ino < c->ninodes; ino++)
		if (!(c->istate[ino] & IS_USED))
			break;
	if (ino >= c->ninodes) {
		*why = "no free inode for /lost+found";
		return -ENOSPC;
	}
	lf = calloc(1, sizeof(*lf));
	if (!c->lf_names)
		c->lf_names = names_new();
	if (!lf || !c->lf_names) {
		free(lf);
		return fsck_fail(c, -ENOMEM);
	}
	ret = fsck_inode_read(c, DAXFS_ROOT_INO, &rd);
	if (!ret)
		ret = fsck_make_dir(c, ino, DAXFS_ROOT_INO, 0700, rd.uid,
				    rd.gid);
	if (!ret) {
		ret = add_entry(c, root, "lost+found", 10, ino, DT_DIR_, &at);
		if (ret)
			fsck_inode_clear(c, ino, 0);
	}
	if (!ret)
		ret = add_nlink(c, DAXFS_ROOT_INO);
	if (ret) {
		free(lf);
		*why = "cannot create /lost+found";
		return ret;
	}
	root->nsub++;
	lf->ino = ino;
	lf->parent = lf->found = DAXFS_ROOT_INO;
	lf->entry_off = at;
	lf->entry_slots = 1;
	lf->nlink = 2;
	lf->reach = REACH_YES;
	c->lf = lf;
	c->lf_own = true;
	c->istate[ino] = IS_USED | IS_NEW | DT_DIR_;
	c->links[ino] = 1;
	fsck_note(c, "created /lost+found (inode %llu)",
		  (unsigned long long)ino);
	return 0;
}

/*
 * reconnect -- link an unconnected inode into /lost+found as "#ino"
 * (x: its directory record, for a directory).
 */
static void reconnect(struct fsck *c, uint64_t ino, uint8_t type,
		      struct fdir *x)
{
	const char *why = NULL;
	char name[48], how[96];
	uint64_t at = 0;
	int ret = 0;

	snprintf(name, sizeof(name), "#%llu", (unsigned long long)ino);
	if (c->repair) {
		ret = make_lf(c, &why);
		for (unsigned k = 1; !ret && names_has(c->lf_names, name,
						       strlen(name)); k++)
			snprintf(name, sizeof(name), "#%llu.%u",
				 (unsigned long long)ino, k);
		if (!ret) {
			ret = add_entry(c, c->lf, name, strlen(name), ino, type,
				      &at);
			if (ret == -ENOSPC)
				why = "no space for the entry";
		}
		if (!ret && names_add(c->lf_names, name, strlen(name)))
			ret = fsck_fail(c, -ENOMEM);
		if (!ret && x) {
			struct daxfs_dinode d;

			ret = fsck_inode_read(c, ino, &d);
			if (!ret) {
				d.parent = c->lf->ino;
				ret = fsck_inode_write(c, ino, &d);
			}
			if (!ret)
				ret = add_nlink(c, c->lf->ino);
		}
	}
	if (!ret) {
		uint64_t lf = c->lf ? c->lf->ino : LF_PENDING;

		c->links[ino]++;
		if (x) {
			x->found = x->parent = lf;
			x->entry_off = at;
			x->entry_slots = (uint8_t)DAXFS_DIRENT_SLOTS(
						strlen(name));
			x->reach = REACH_YES;
			if (c->lf) {
				c->lf->nsub++;
				if (!c->repair)
					c->lf->nlink_adj++;
			}
		}
	}
	snprintf(how, sizeof(how), "reconnected as /lost+found/%s", name);
	fsck_problem(c, ret, ret ? why : how, "%s %llu is not connected to "
		     "the root", x ? "directory" : "inode",
		     (unsigned long long)ino);
}

/* cut -- remove a directory's entry to break a loop */
static int cut(struct fsck *c, struct fdir *x)
{
	struct fdir *h = fsck_dir_find(c, x->found);
	bool wr;
	int ret = zap(c, x->entry_off, x->entry_slots, NULL, 0, &wr);

	if (h) {
		h->nsub--;
		h->nent--;
	}
	fsck_problem(c, ret, "entry removed", "directory %llu is part of a "
		     "directory loop (its entry is in directory %llu)",
		     (unsigned long long)x->ino, (unsigned long long)x->found);
	x->found = 0;
	return ret;
}

/* walk -- settle whether x reaches the root through the entries found */
static int walk(struct fsck *c, struct fdir *x, uint32_t id,
		struct fdir ***path, uint64_t *cap)
{
	uint64_t n = 0;
	struct fdir *y = x;

	for (;;) {
		if (y->reach != REACH_UNKNOWN)
			break;
		if (y->walk == id) {		/* round again: a loop */
			cut(c, y);
			reconnect(c, y->ino, DT_DIR_, y);
			break;
		}
		y->walk = id;
		if (n == *cap) {
			uint64_t nc = *cap ? *cap * 2 : 64;
			struct fdir **v = realloc(*path, nc * sizeof(*v));

			if (!v)
				return fsck_fail(c, -ENOMEM);
			*path = v;
			*cap = nc;
		}
		(*path)[n++] = y;
		if (y->found == 0) {
			if (y->nlink == 0 && y->nent == 0) {
				y->reach = REACH_ORPHAN;
				break;
			}
			reconnect(c, y->ino, DT_DIR_, y);
			break;
		}
		y = fsck_dir_find(c, y->found);
		if (!y)
			return fsck_fail(c, -EUCLEAN);
	}
	/* everything on the path now hangs where the walk ended */
	for (uint64_t k = 0; k < n; k++)
		if ((*path)[k]->reach == REACH_UNKNOWN)
			(*path)[k]->reach = REACH_YES;
	return c->fatal;
}

/* orphan -- allocated with no links and no entries */
static void orphan(struct fsck *c, uint64_t ino)
{
	if (!c->repair) {
		fsck_note(c, "inode %llu is an orphan (unlinked while open); "
			  "it will be freed at mount",
			  (unsigned long long)ino);
		return;
	}
	if (fsck_free_inode(c, ino))
		return;
	fsck_note(c, "inode %llu was an orphan (unlinked while open); freed",
		  (unsigned long long)ino);
}

/*
 * fsck_pass_reach -- pass 3: every directory reachable once from the
 * root, unconnected inodes into /lost+found, orphans, parent pointers.
 */
int fsck_pass_reach(struct fsck *c)
{
	struct fdir *root = fsck_dir_find(c, DAXFS_ROOT_INO), **path = NULL;
	uint64_t cap = 0;
	uint32_t id = 0;

	if (!root)
		return fsck_fail(c, -EUCLEAN);
	root->reach = REACH_YES;
	root->found = DAXFS_ROOT_INO;
	for (uint64_t k = 0; k < c->ndirs && !c->fatal; k++)
		if (c->dirs[k].reach == REACH_UNKNOWN)
			walk(c, &c->dirs[k], ++id, &path, &cap);
	free(path);
	for (uint64_t ino = DAXFS_ROOT_INO + 1; ino < c->ninodes && !c->fatal;
	     ino++) {
		uint16_t st = c->istate[ino];

		if (!(st & IS_USED) || (st & IS_TYPE) == DT_DIR_ ||
		    c->links[ino])
			continue;
		if (st & IS_ORPHAN)
			orphan(c, ino);
		else
			reconnect(c, ino, (uint8_t)(st & IS_TYPE), NULL);
	}
	for (uint64_t k = 0; k < c->ndirs && !c->fatal; k++) {
		struct fdir *x = &c->dirs[k];
		int ret = 0;

		if (x->reach == REACH_ORPHAN) {
			orphan(c, x->ino);
			continue;
		}
		if (x->parent == x->found || x->found == LF_PENDING)
			continue;
		if (c->repair) {
			struct daxfs_dinode d;

			ret = fsck_inode_read(c, x->ino, &d);
			if (!ret) {
				d.parent = x->found;
				ret = fsck_inode_write(c, x->ino, &d);
			}
		}
		fsck_problem(c, ret, NULL, "directory %llu: parent is %llu, "
			     "found %llu", (unsigned long long)x->ino,
			     (unsigned long long)x->parent,
			     (unsigned long long)x->found);
		x->parent = x->found;
	}
	return c->fatal;
}

/* fsck_pass_links -- pass 4: link counts; counts the inodes in use */
int fsck_pass_links(struct fsck *c)
{
	struct daxfs_dinode *buf = malloc(BATCH * sizeof(*buf));
	int ret = 0;

	if (!buf)
		return fsck_fail(c, -ENOMEM);
	for (uint64_t base = 0; base < c->ninodes && !c->fatal;
	     base += BATCH) {
		uint64_t n = MIN(BATCH, c->ninodes - base), used = 0;

		/* only batches with inodes in use are read: a sparse file
		 * region's unused table stays unread (and unallocated) */
		for (uint64_t k = 0; k < n && !used; k++)
			used = c->istate[base + k] & IS_USED;
		if (!used)
			continue;
		ret = fsck_read(c, c->itable_off + base * DAXFS_INODE_SIZE,
				buf, n * DAXFS_INODE_SIZE);
		if (ret) {
			fsck_fail(c, ret);
			break;
		}
		for (uint64_t k = 0; k < n && !c->fatal; k++) {
			uint64_t ino = base + k, want, have;
			uint16_t st = c->istate[ino];
			struct fdir *f = NULL;

			if (!ino || !(st & IS_USED))
				continue;
			c->res->inodes++;
			have = buf[k].nlink;
			if ((st & IS_TYPE) == DT_DIR_) {
				f = fsck_dir_find(c, ino);
				if (!f || f->reach == REACH_ORPHAN)
					continue;
				want = 2 + (uint64_t)f->nsub;
				if ((st & IS_NEW) && !c->repair)
					have = f->nlink;
				if (!c->repair)
					have += (uint64_t)(int64_t)f->nlink_adj;
			} else {
				want = c->links[ino];
				if (!want)
					continue;	/* an orphan */
			}
			if (have == want)
				continue;
			want = MIN(want, UINT32_MAX);
			ret = 0;
			if (c->repair) {
				struct daxfs_dinode d;

				ret = fsck_inode_read(c, ino, &d);
				if (!ret) {
					d.nlink = (uint32_t)want;
					ret = fsck_inode_write(c, ino, &d);
				}
			}
			fsck_problem(c, ret, NULL, "inode %llu: link count "
				     "%llu, found %llu",
				     (unsigned long long)ino,
				     (unsigned long long)have,
				     (unsigned long long)want);
		}
	}
	free(buf);
	return c->fatal;
}
