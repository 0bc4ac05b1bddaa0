/* SPDX-License-Identifier: MIT */
/*
 * Files written by libtxstats 0.x still load: tests/data/ holds what commit 17190d1 (the last
 * main before checkpoints and snapshots became images) wrote, and the answers it gave then.
 *
 * They were made by a generator, not committed, compiled by hand against that commit's headers
 * and library (gcc -I<old>/libtxstats/include gen.c -L<oldbuild>/libtxstats -ltxstats). On a
 * fixed clock (OLD_T0), a window of 60 s, 2 shards and max_retained 50, it added 300
 * transactions (amounts from -50 to 450, every 5th a whole number of cents; milliseconds spread
 * over the window, every 9th sharing the one before; every 7th under an idempotency key with
 * txstats_add_keyed(), plus two keyed ones refused: expired and future), then wrote
 * v1-snapshot.json (txstats_save(), JSON version 1) and v1-snapshot.bin (txstats_save_bin(),
 * "TXCKPT01"), and printed its statistics, listing and key answers (SNAP, SNAP_LIST, SNAP_KEYS)
 * and the same with the clock 30 s later (SNAP_T1, SNAP_T1_LIST, SNAP_KEYS_T1). A second
 * instance, alike, opened v1-dir with txstats_open_dir() (no background checkpoints), added 200
 * (every 11th keyed), called txstats_checkpoint(), added 60 more (every 6th keyed), printed what
 * it held (JDIR, JDIR_LIST, JDIR_KEYS) and was destroyed without another checkpoint: v1-dir is its
 * "TXCKPT01" checkpoint.bin and the journal segment with the 60 records after it (its lock file
 * left out). Listings are sorted by timestamp, then amount: one millisecond's order across
 * shards is not part of the contract.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

#ifndef LEGACY_DATA
#error "LEGACY_DATA: the directory of the 0.x files (tests/data)"
#endif

/* The generator's clock: 2027-01-15T08:00:00Z. */
#define OLD_T0     INT64_C(1800000000000)
#define OLD_T1     (OLD_T0 + 30000)
#define WINDOW     60000
#define SHARDS     2
#define RETAINED   50
#define MAX_LISTED 1000

struct expect {
    uint64_t count;
    int64_t sum_hi;
    uint64_t sum_lo;
    txstats_amount_t min, max;
    uint64_t retained;
};

/* A keyed transaction of the old run: the outcome of its first call, then what
 * txstats_key_check() answered for it (and its *first), and for another amount under its key. */
struct key_expect {
    const char *key;
    txstats_amount_t amount;
    int64_t ts;
    int first_rc;
    int check_rc;
    int check_first;
    int check_other;
};

/* ---- Recorded with libtxstats 17190d1 ---------------------------------------------------- */

static const struct expect SNAP = {
    300, INT64_C(0), UINT64_C(66439616965), INT64_C(-43261182), INT64_C(448700556), 50};
static const txstats_tx_t SNAP_LIST[] = {
    {INT64_C(96280000), OLD_T0 - 59850},  {INT64_C(267735677), OLD_T0 - 59809},
    {INT64_C(169768132), OLD_T0 - 57641}, {INT64_C(372042025), OLD_T0 - 56081},
    {INT64_C(395811762), OLD_T0 - 55907}, {INT64_C(25690000), OLD_T0 - 55105},
    {INT64_C(41189477), OLD_T0 - 55105},  {INT64_C(252731961), OLD_T0 - 53651},
    {INT64_C(159950482), OLD_T0 - 53039}, {INT64_C(113253498), OLD_T0 - 52057},
    {INT64_C(344151137), OLD_T0 - 52057}, {INT64_C(109965631), OLD_T0 - 42925},
    {INT64_C(320731509), OLD_T0 - 41829}, {INT64_C(369198956), OLD_T0 - 41829},
    {INT64_C(402570000), OLD_T0 - 41407}, {INT64_C(238560000), OLD_T0 - 40476},
    {INT64_C(189260000), OLD_T0 - 40104}, {INT64_C(287518860), OLD_T0 - 39757},
    {INT64_C(94565597), OLD_T0 - 39030},  {INT64_C(-30864970), OLD_T0 - 37739},
    {INT64_C(391874458), OLD_T0 - 36291}, {INT64_C(352965286), OLD_T0 - 35961},
    {INT64_C(90210000), OLD_T0 - 31922},  {INT64_C(188947903), OLD_T0 - 31506},
    {INT64_C(262786398), OLD_T0 - 30626}, {INT64_C(-25880000), OLD_T0 - 25168},
    {INT64_C(350687350), OLD_T0 - 24950}, {INT64_C(155321541), OLD_T0 - 22892},
    {INT64_C(243791582), OLD_T0 - 20815}, {INT64_C(438623577), OLD_T0 - 20185},
    {INT64_C(-22625013), OLD_T0 - 20017}, {INT64_C(111151757), OLD_T0 - 18826},
    {INT64_C(95055071), OLD_T0 - 18739},  {INT64_C(447810000), OLD_T0 - 18739},
    {INT64_C(420273252), OLD_T0 - 16236}, {INT64_C(188380268), OLD_T0 - 14534},
    {INT64_C(204691934), OLD_T0 - 14109}, {INT64_C(241000000), OLD_T0 - 10419},
    {INT64_C(444174408), OLD_T0 - 10056}, {INT64_C(312208493), OLD_T0 - 9005},
    {INT64_C(331487558), OLD_T0 - 6268},  {INT64_C(355674986), OLD_T0 - 6000},
    {INT64_C(443812352), OLD_T0 - 5532},  {INT64_C(280471407), OLD_T0 - 5221},
    {INT64_C(-27550817), OLD_T0 - 3616},  {INT64_C(124783160), OLD_T0 - 3616},
    {INT64_C(179756367), OLD_T0 - 2549},  {INT64_C(369380597), OLD_T0 - 2128},
    {INT64_C(136494395), OLD_T0 - 941},   {INT64_C(73840000), OLD_T0 - 425},
};
static const struct key_expect SNAP_KEYS[] = {
    {"snap-0", INT64_C(73840000), OLD_T0 - 425, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-7", INT64_C(-27550817), OLD_T0 - 3616, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-14", INT64_C(188947903), OLD_T0 - 31506, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-21", INT64_C(204691934), OLD_T0 - 14109, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-28", INT64_C(159950482), OLD_T0 - 53039, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-35", INT64_C(25690000), OLD_T0 - 55105, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-42", INT64_C(355674986), OLD_T0 - 6000, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-49", INT64_C(391874458), OLD_T0 - 36291, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-56", INT64_C(237433549), OLD_T0 - 19592, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-63", INT64_C(200295738), OLD_T0 - 3598, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-70", INT64_C(18760000), OLD_T0 - 16648, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-77", INT64_C(319270980), OLD_T0 - 21946, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-84", INT64_C(-42655942), OLD_T0 - 31516, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-91", INT64_C(233538312), OLD_T0 - 15634, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-98", INT64_C(295112091), OLD_T0 - 29194, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-105", INT64_C(202150000), OLD_T0 - 41762, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-112", INT64_C(58668497), OLD_T0 - 56042, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-119", INT64_C(430253051), OLD_T0 - 32364, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-126", INT64_C(432608646), OLD_T0 - 36659, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-133", INT64_C(185941116), OLD_T0 - 16788, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-140", INT64_C(348160000), OLD_T0 - 34605, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-147", INT64_C(259224370), OLD_T0 - 40158, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-154", INT64_C(241040401), OLD_T0 - 1395, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-161", INT64_C(415434066), OLD_T0 - 34207, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-168", INT64_C(71691763), OLD_T0 - 59962, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-175", INT64_C(28180000), OLD_T0 - 7555, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-182", INT64_C(396943652), OLD_T0 - 10202, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-189", INT64_C(332054964), OLD_T0 - 33271, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-196", INT64_C(221503590), OLD_T0 - 476, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-203", INT64_C(166883595), OLD_T0 - 42913, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-210", INT64_C(164050000), OLD_T0 - 4725, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-217", INT64_C(301022003), OLD_T0 - 5925, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-224", INT64_C(-18325847), OLD_T0 - 2785, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-231", INT64_C(115866351), OLD_T0 - 23778, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-238", INT64_C(325821546), OLD_T0 - 5194, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-245", INT64_C(376090000), OLD_T0 - 4593, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-252", INT64_C(165969633), OLD_T0 - 58940, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-259", INT64_C(329495190), OLD_T0 - 2175, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-266", INT64_C(205792470), OLD_T0 - 46351, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-273", INT64_C(23172263), OLD_T0 - 29742, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-280", INT64_C(402570000), OLD_T0 - 42040, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-287", INT64_C(-21682420), OLD_T0 - 8022, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-294", INT64_C(391375258), OLD_T0 - 54881, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"snap-expired", INT64_C(1234500), OLD_T0 - 60000, TXSTATS_EXPIRED, TXSTATS_DUPLICATE,
     TXSTATS_EXPIRED, TXSTATS_ECONFLICT},
    {"snap-future", INT64_C(-777), OLD_T0 + 5, TXSTATS_EFUTURE, TXSTATS_DUPLICATE, TXSTATS_EFUTURE,
     TXSTATS_ECONFLICT},
};
static const struct expect SNAP_T1 = {
    144, INT64_C(0), UINT64_C(30566152034), INT64_C(-42051323), INT64_C(447810000), 25};
static const txstats_tx_t SNAP_T1_LIST[] = {
    {INT64_C(-25880000), OLD_T0 - 25168}, {INT64_C(350687350), OLD_T0 - 24950},
    {INT64_C(155321541), OLD_T0 - 22892}, {INT64_C(243791582), OLD_T0 - 20815},
    {INT64_C(438623577), OLD_T0 - 20185}, {INT64_C(-22625013), OLD_T0 - 20017},
    {INT64_C(111151757), OLD_T0 - 18826}, {INT64_C(95055071), OLD_T0 - 18739},
    {INT64_C(447810000), OLD_T0 - 18739}, {INT64_C(420273252), OLD_T0 - 16236},
    {INT64_C(188380268), OLD_T0 - 14534}, {INT64_C(204691934), OLD_T0 - 14109},
    {INT64_C(241000000), OLD_T0 - 10419}, {INT64_C(444174408), OLD_T0 - 10056},
    {INT64_C(312208493), OLD_T0 - 9005},  {INT64_C(331487558), OLD_T0 - 6268},
    {INT64_C(355674986), OLD_T0 - 6000},  {INT64_C(443812352), OLD_T0 - 5532},
    {INT64_C(280471407), OLD_T0 - 5221},  {INT64_C(-27550817), OLD_T0 - 3616},
    {INT64_C(124783160), OLD_T0 - 3616},  {INT64_C(179756367), OLD_T0 - 2549},
    {INT64_C(369380597), OLD_T0 - 2128},  {INT64_C(136494395), OLD_T0 - 941},
    {INT64_C(73840000), OLD_T0 - 425},
};
/* txstats_key_check() of each of SNAP_KEYS at OLD_T0 + 30000 */
static const int SNAP_KEYS_T1[] = {
    TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,
    TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_DUPLICATE,
    TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_DUPLICATE,
    TXSTATS_OK,        TXSTATS_OK,        TXSTATS_OK,        TXSTATS_OK,        TXSTATS_DUPLICATE,
    TXSTATS_OK,        TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_OK,
    TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,
    TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_DUPLICATE, TXSTATS_DUPLICATE,
    TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE,
    TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_OK,        TXSTATS_DUPLICATE, TXSTATS_DUPLICATE};
static const struct expect JDIR = {
    260, INT64_C(0), UINT64_C(52660598758), INT64_C(-49950498), INT64_C(446477001), 50};
static const txstats_tx_t JDIR_LIST[] = {
    {INT64_C(386818887), OLD_T0 - 59548}, {INT64_C(391318794), OLD_T0 - 59548},
    {INT64_C(117616159), OLD_T0 - 56907}, {INT64_C(172100000), OLD_T0 - 56824},
    {INT64_C(121895611), OLD_T0 - 53086}, {INT64_C(-34783945), OLD_T0 - 52965},
    {INT64_C(200582312), OLD_T0 - 52185}, {INT64_C(-7880000), OLD_T0 - 51902},
    {INT64_C(124502284), OLD_T0 - 51642}, {INT64_C(446118455), OLD_T0 - 51497},
    {INT64_C(142746139), OLD_T0 - 51213}, {INT64_C(-49950498), OLD_T0 - 50769},
    {INT64_C(245766988), OLD_T0 - 50014}, {INT64_C(31282549), OLD_T0 - 49219},
    {INT64_C(333634065), OLD_T0 - 48555}, {INT64_C(72345785), OLD_T0 - 47042},
    {INT64_C(429503582), OLD_T0 - 47042}, {INT64_C(104893549), OLD_T0 - 46201},
    {INT64_C(-14155696), OLD_T0 - 44242}, {INT64_C(257298493), OLD_T0 - 44091},
    {INT64_C(287670000), OLD_T0 - 38399}, {INT64_C(376189194), OLD_T0 - 38399},
    {INT64_C(251540000), OLD_T0 - 37526}, {INT64_C(23860237), OLD_T0 - 36169},
    {INT64_C(89713060), OLD_T0 - 36169},  {INT64_C(190270000), OLD_T0 - 35375},
    {INT64_C(186584432), OLD_T0 - 32742}, {INT64_C(362340000), OLD_T0 - 32660},
    {INT64_C(289032315), OLD_T0 - 30525}, {INT64_C(-2288900), OLD_T0 - 29853},
    {INT64_C(134683055), OLD_T0 - 28490}, {INT64_C(278558178), OLD_T0 - 26759},
    {INT64_C(390365581), OLD_T0 - 25034}, {INT64_C(63180000), OLD_T0 - 24050},
    {INT64_C(14032659), OLD_T0 - 22443},  {INT64_C(288373475), OLD_T0 - 19936},
    {INT64_C(22101427), OLD_T0 - 19534},  {INT64_C(272889478), OLD_T0 - 16695},
    {INT64_C(-33611511), OLD_T0 - 14581}, {INT64_C(-27840000), OLD_T0 - 14288},
    {INT64_C(419833462), OLD_T0 - 14288}, {INT64_C(334694736), OLD_T0 - 11818},
    {INT64_C(141318706), OLD_T0 - 9698},  {INT64_C(305855347), OLD_T0 - 8467},
    {INT64_C(201030000), OLD_T0 - 8413},  {INT64_C(303200000), OLD_T0 - 8228},
    {INT64_C(378392740), OLD_T0 - 6831},  {INT64_C(33009204), OLD_T0 - 5116},
    {INT64_C(15710499), OLD_T0 - 3891},   {INT64_C(152845707), OLD_T0 - 3500},
};
static const struct key_expect JDIR_KEYS[] = {
    {"dir-1001", INT64_C(14032659), OLD_T0 - 22443, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1012", INT64_C(117616159), OLD_T0 - 56907, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1023", INT64_C(305855347), OLD_T0 - 8467, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1034", INT64_C(72345785), OLD_T0 - 47042, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1045", INT64_C(190270000), OLD_T0 - 35375, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1056", INT64_C(301435434), OLD_T0 - 45980, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1067", INT64_C(120204275), OLD_T0 - 10242, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1078", INT64_C(-32769099), OLD_T0 - 52970, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1089", INT64_C(198570826), OLD_T0 - 53594, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1100", INT64_C(429430000), OLD_T0 - 43557, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1111", INT64_C(314977835), OLD_T0 - 29587, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1122", INT64_C(350150611), OLD_T0 - 50466, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1133", INT64_C(183775175), OLD_T0 - 25310, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1144", INT64_C(301944138), OLD_T0 - 18634, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1155", INT64_C(446240000), OLD_T0 - 46137, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1166", INT64_C(116464685), OLD_T0 - 44677, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1177", INT64_C(210982346), OLD_T0 - 47885, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1188", INT64_C(324046246), OLD_T0 - 15025, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-1199", INT64_C(227113192), OLD_T0 - 755, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2004", INT64_C(-45856473), OLD_T0 - 3431, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2010", INT64_C(296340000), OLD_T0 - 25421, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2016", INT64_C(376818824), OLD_T0 - 46805, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2022", INT64_C(19353263), OLD_T0 - 42684, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2028", INT64_C(-17910004), OLD_T0 - 6634, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2034", INT64_C(228193216), OLD_T0 - 49815, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2040", INT64_C(382030000), OLD_T0 - 38000, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2046", INT64_C(173774199), OLD_T0 - 36191, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2052", INT64_C(-1839267), OLD_T0 - 53487, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
    {"dir-2058", INT64_C(260125434), OLD_T0 - 25601, TXSTATS_OK, TXSTATS_DUPLICATE, TXSTATS_OK,
     TXSTATS_ECONFLICT},
};

/* ---- Helpers ----------------------------------------------------------------------------- */

static char tmp[64];

static int setup(void **state)
{
    strcpy(tmp, "/tmp/txstats-test-legacy-XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static txstats_t *make_old_like(struct fake_clock *clk, int64_t now)
{
    return make_instance_retaining(clk, now, WINDOW, 0, SHARDS, RETAINED);
}

static void data_path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", LEGACY_DATA, name);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_all(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Copy every file of the directory `from` into `to` (created). */
static void copy_dir(const char *from, const char *to)
{
    assert_int_equal(mkdir(to, 0700), 0);
    DIR *d = opendir(from);
    assert_non_null(d);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)) != NULL) {
        char src[512], dst[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(src, sizeof(src), "%s/%s", from, e->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", to, e->d_name);
        size_t len;
        uint8_t *data = read_all(src, &len);
        write_all(dst, data, len);
        free(data);
        files++;
    }
    closedir(d);
    assert_true(files >= 2); /* checkpoint.bin and a journal segment */
}

static int tx_cmp(const void *a, const void *b)
{
    const txstats_tx_t *x = a, *y = b;
    if (x->timestamp_ms != y->timestamp_ms)
        return x->timestamp_ms < y->timestamp_ms ? -1 : 1;
    return (x->amount > y->amount) - (x->amount < y->amount);
}

/* The listing, sorted by timestamp then amount; returns how many. */
static size_t listing(txstats_t *t, txstats_tx_t *buf, txstats_list_info_t *info)
{
    assert_int_equal(txstats_get_ex(t, buf, MAX_LISTED, info), TXSTATS_OK);
    qsort(buf, info->written, sizeof(buf[0]), tx_cmp);
    return info->written;
}

static void assert_stats_as(txstats_t *t, const struct expect *e)
{
    txstats_summary_t s;
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, e->count);
    assert_int_equal(s.sum_hi, e->sum_hi);
    assert_int_equal(s.sum_lo, e->sum_lo);
    assert_int_equal(s.min, e->min);
    assert_int_equal(s.max, e->max);
}

/* The listing is exactly `want` (n entries, sorted as listing() sorts), as a multiset per
 * millisecond. */
static void assert_listing(txstats_t *t, const struct expect *e, const txstats_tx_t *want, size_t n)
{
    txstats_tx_t *got = calloc(MAX_LISTED, sizeof(*got));
    txstats_list_info_t info;
    assert_non_null(got);
    assert_int_equal(n, e->retained);
    assert_int_equal(listing(t, got, &info), n);
    assert_int_equal(info.in_window, e->count);
    assert_int_equal(info.retained, e->retained);
    for (size_t i = 0; i < n; i++) {
        if (got[i].timestamp_ms != want[i].timestamp_ms || got[i].amount != want[i].amount)
            fail_msg("listing entry %zu: %" PRId64 " at T0%+" PRId64 ", want %" PRId64
                     " at T0%+" PRId64,
                     i, got[i].amount, got[i].timestamp_ms - OLD_T0, want[i].amount,
                     want[i].timestamp_ms - OLD_T0);
    }
    free(got);
}

/* Each recorded key answers as it did in the old run, and a retry is not counted again. */
static void assert_keys(txstats_t *t, const struct key_expect *k, size_t n)
{
    txstats_summary_t before, after;
    assert_int_equal(txstats_stats(t, &before), TXSTATS_OK);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(k[i].key);
        int first = 99;
        assert_int_equal(txstats_key_check(t, k[i].amount, k[i].ts, k[i].key, len, &first),
                         k[i].check_rc);
        assert_int_equal(first, k[i].check_first);
        assert_int_equal(first, k[i].first_rc);
        assert_int_equal(txstats_key_check(t, k[i].amount + 1, k[i].ts, k[i].key, len, NULL),
                         k[i].check_other);
        first = 99;
        assert_int_equal(txstats_add_keyed(t, k[i].amount, k[i].ts, k[i].key, len, &first),
                         TXSTATS_DUPLICATE);
        assert_int_equal(first, k[i].first_rc);
    }
    assert_int_equal(txstats_key_check(t, 1, OLD_T0, "never-used", 10, NULL), TXSTATS_OK);
    assert_int_equal(txstats_stats(t, &after), TXSTATS_OK);
    assert_int_equal(after.count, before.count);
    assert_int_equal(after.sum_lo, before.sum_lo);
    assert_int_equal(after.sum_hi, before.sum_hi);
}

#define NQ 21
/* Quantiles at 0, 5 %, ..., 100 %; the distribution counts what the statistics count. */
static void quantiles(txstats_t *t, txstats_amount_t out[NQ])
{
    uint32_t q[NQ];
    uint64_t count;
    txstats_summary_t s;
    for (unsigned i = 0; i < NQ; i++)
        q[i] = i * (TXSTATS_Q_SCALE / (NQ - 1));
    assert_int_equal(txstats_quantiles(t, q, NQ, out, &count), TXSTATS_OK);
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(count, s.count);
}

/* ---- Snapshots: txstats_save() (JSON version 1) and txstats_save_bin() ("TXCKPT01") ------- */

static const char *const SNAPSHOTS[] = {"v1-snapshot.json", "v1-snapshot.bin"};

static void test_snapshots_load(void **state)
{
    txstats_amount_t q[2][NQ];
    for (int f = 0; f < 2; f++) {
        struct fake_clock clk;
        txstats_t *t = make_old_like(&clk, OLD_T0);
        txstats_load_info_t info;
        char path[512];
        uint64_t held;
        data_path(path, sizeof(path), SNAPSHOTS[f]);
        memset(&info, 0xff, sizeof(info));
        assert_int_equal(txstats_load_ex(t, path, &info), TXSTATS_OK);
        assert_int_equal(info.transactions, SNAP.count);
        assert_int_equal(info.expired, 0);
        assert_int_equal(info.approximate, SNAP.count - SNAP.retained);
        assert_stats_as(t, &SNAP);
        assert_listing(t, &SNAP, SNAP_LIST, sizeof(SNAP_LIST) / sizeof(SNAP_LIST[0]));
        assert_int_equal(txstats_key_count(t, &held), TXSTATS_OK);
        assert_int_equal(held, sizeof(SNAP_KEYS) / sizeof(SNAP_KEYS[0]));
        assert_keys(t, SNAP_KEYS, sizeof(SNAP_KEYS) / sizeof(SNAP_KEYS[0]));
        /* min and max stay exact whatever the approximation */
        quantiles(t, q[f]);
        assert_int_equal(q[f][0], SNAP.min);
        assert_int_equal(q[f][NQ - 1], SNAP.max);
        txstats_destroy(t);
    }
    /* the two formats held the same window: the same approximation */
    assert_memory_equal(q[0], q[1], sizeof(q[0]));
}

/* Loaded 30 s later: what left the window is dropped, keys of transactions that left it too. */
static void test_snapshots_load_later(void **state)
{
    size_t listed = sizeof(SNAP_T1_LIST) / sizeof(SNAP_T1_LIST[0]);
    for (int f = 0; f < 2; f++) {
        struct fake_clock clk;
        txstats_t *t = make_old_like(&clk, OLD_T1);
        txstats_load_info_t info;
        char path[512];
        data_path(path, sizeof(path), SNAPSHOTS[f]);
        assert_int_equal(txstats_load_ex(t, path, &info), TXSTATS_OK);
        assert_int_equal(info.transactions, SNAP_T1.count);
        assert_int_equal(info.expired, SNAP.count - SNAP_T1.count);
        assert_stats_as(t, &SNAP_T1);
        assert_listing(t, &SNAP_T1, SNAP_T1_LIST, listed);
        txstats_amount_t q[NQ];
        quantiles(t, q);
        assert_int_equal(q[0], SNAP_T1.min);
        assert_int_equal(q[NQ - 1], SNAP_T1.max);
        for (size_t i = 0; i < sizeof(SNAP_KEYS) / sizeof(SNAP_KEYS[0]); i++) {
            const struct key_expect *k = &SNAP_KEYS[i];
            assert_int_equal(txstats_key_check(t, k->amount, k->ts, k->key, strlen(k->key), NULL),
                             SNAP_KEYS_T1[i]);
        }
        txstats_destroy(t);
    }
}

/* `approximate` counts, of the transactions now in the window, those whose amounts the file did
 * not keep (txstats.h): not those of cells that have left it. */
static void test_approximate_in_window(void **state)
{
    char src[512], dir[512];
    for (int f = 0; f < 2; f++) {
        struct fake_clock clk;
        txstats_load_info_t info;
        char path[512];
        data_path(path, sizeof(path), SNAPSHOTS[f]);
        txstats_t *t = make_old_like(&clk, OLD_T1);
        assert_int_equal(txstats_load_ex(t, path, &info), TXSTATS_OK);
        assert_int_equal(info.transactions, SNAP_T1.count);
        assert_int_equal(info.approximate, SNAP_T1.count - SNAP_T1.retained);
        txstats_destroy(t);
        /* everything has left the window */
        t = make_old_like(&clk, OLD_T0 + WINDOW);
        assert_int_equal(txstats_load_ex(t, path, &info), TXSTATS_OK);
        assert_int_equal(info.transactions, 0);
        assert_int_equal(info.expired, SNAP.count);
        assert_int_equal(info.approximate, 0);
        txstats_destroy(t);
    }
    struct fake_clock clk;
    txstats_durability_t d;
    txstats_recovery_t rep;
    txstats_summary_t s;
    data_path(src, sizeof(src), "v1-dir");
    snprintf(dir, sizeof(dir), "%s/dir", tmp);
    copy_dir(src, dir);
    txstats_t *t = make_old_like(&clk, OLD_T0 + WINDOW);
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_NEVER;
    assert_int_equal(txstats_open_dir(t, dir, &d, &rep), TXSTATS_OK);
    assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
    assert_int_equal(s.count, 0);
    assert_int_equal(rep.snapshot_transactions, 0);
    assert_int_equal(rep.approximate, 0);
    txstats_destroy(t);
}

/* ---- A journaled directory: "TXCKPT01" checkpoint.bin and the journal after it ----------- */

static txstats_t *open_copy(struct fake_clock *clk, const char *dir, txstats_recovery_t *rep)
{
    txstats_t *t = make_old_like(clk, OLD_T0);
    txstats_durability_t d;
    txstats_durability_init(&d);
    d.fsync = TXSTATS_FSYNC_NEVER;
    d.checkpoint_interval_ms = 0;
    memset(rep, 0xff, sizeof(*rep));
    int rc = txstats_open_dir(t, dir, &d, rep);
    if (rc != TXSTATS_OK)
        fail_msg("open_dir %s: %s", dir, txstats_strerror(rc));
    return t;
}

static void assert_checkpoint_v2(const char *dir)
{
    char path[512];
    size_t len;
    snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
    uint8_t *data = read_all(path, &len);
    assert_true(len >= 8);
    assert_memory_equal(data, "TXCKPT02", 8);
    free(data);
}

static void test_dir_open(void **state)
{
    char src[512], dir[512];
    struct fake_clock clk;
    txstats_recovery_t rep;
    txstats_amount_t q1[NQ], q2[NQ];
    txstats_tx_t *l1 = calloc(MAX_LISTED, sizeof(*l1)), *l2 = calloc(MAX_LISTED, sizeof(*l2));
    txstats_list_info_t i1, i2;
    assert_non_null(l1);
    assert_non_null(l2);
    data_path(src, sizeof(src), "v1-dir");
    snprintf(dir, sizeof(dir), "%s/dir", tmp);
    copy_dir(src, dir);

    txstats_t *t = open_copy(&clk, dir, &rep);
    assert_true(rep.approximate > 0);
    assert_int_equal(rep.replayed, 60); /* the records after the old checkpoint */
    assert_int_equal(rep.snapshot_transactions + rep.replayed, JDIR.count);
    assert_int_equal(rep.expired, 0);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.corrupt_records, 0);
    assert_stats_as(t, &JDIR);
    assert_listing(t, &JDIR, JDIR_LIST, sizeof(JDIR_LIST) / sizeof(JDIR_LIST[0]));
    assert_keys(t, JDIR_KEYS, sizeof(JDIR_KEYS) / sizeof(JDIR_KEYS[0]));
    /* open_dir wrote a checkpoint of this version; so does txstats_checkpoint() */
    assert_checkpoint_v2(dir);
    assert_int_equal(txstats_checkpoint(t), TXSTATS_OK);
    assert_checkpoint_v2(dir);
    quantiles(t, q1);
    assert_int_equal(q1[0], JDIR.min);
    assert_int_equal(q1[NQ - 1], JDIR.max);
    listing(t, l1, &i1);
    assert_int_equal(i1.in_window, JDIR.count);
    txstats_destroy(t);

    /* The format-2 checkpoint keeps each cell's buckets: nothing approximate any more, every
     * answer the same. */
    t = open_copy(&clk, dir, &rep);
    assert_int_equal(rep.approximate, 0);
    assert_stats_as(t, &JDIR);
    quantiles(t, q2);
    assert_memory_equal(q1, q2, sizeof(q1));
    listing(t, l2, &i2);
    assert_int_equal(i2.in_window, i1.in_window);
    assert_int_equal(i2.retained, i1.retained);
    assert_int_equal(i2.written, i1.written);
    assert_memory_equal(l1, l2, i1.written * sizeof(l1[0]));
    assert_keys(t, JDIR_KEYS, sizeof(JDIR_KEYS) / sizeof(JDIR_KEYS[0]));
    assert_checkpoint_v2(dir);
    txstats_destroy(t);
    free(l1);
    free(l2);
}

/* ---- Damaged copies: refused, the instance as it was ------------------------------------- */

struct damage {
    const char *file;    /* under tests/data */
    const char *pattern; /* NULL: `at` counts from the start (negative: from the end) */
    long at;             /* offset from the pattern's first occurrence, or from the start/end */
    uint8_t flip;        /* 0: truncate at that offset; else XOR the byte there with it */
};

static const struct damage DAMAGES[] = {
    /* JSON version 1 */
    {"v1-snapshot.json", NULL, 0, 0},
    {"v1-snapshot.json", NULL, 1, 0},
    {"v1-snapshot.json", NULL, 9000, 0},
    {"v1-snapshot.json", NULL, -2, 0},
    {"v1-snapshot.json", NULL, 0, 0x01},                  /* '{' -> 'z' */
    {"v1-snapshot.json", "libtxstats-snapshot", 0, 0x20}, /* "Libtxstats-..." */
    {"v1-snapshot.json", "\"version\":1", 10, 0x02},      /* version 3 */
    {"v1-snapshot.json", "\"count\":300", 8, 0x01},       /* count 200 */
    {"v1-snapshot.json", "\"sum\":\"66439", 7, 0x01},     /* sum 76439... */
    {"v1-snapshot.json", "[1799999940038,1,", 15, 0x01},  /* a cell of count 0 */
    {"v1-snapshot.json", "[\"96.28\"]", 2, 0x01},         /* kept 86.28 in [96.28, 96.28] */
    {"v1-snapshot.json", "[1799999940150,", 9, 0x01},     /* cells out of order */
    /* binary "TXCKPT01": a CRC-32C over everything */
    {"v1-snapshot.bin", NULL, 0, 0},
    {"v1-snapshot.bin", NULL, 8, 0},
    {"v1-snapshot.bin", NULL, 100, 0},
    {"v1-snapshot.bin", NULL, -4, 0},
    {"v1-snapshot.bin", NULL, -1, 0},
    {"v1-snapshot.bin", NULL, 0, 0x01},
    {"v1-snapshot.bin", NULL, 7, 0x01},
    {"v1-snapshot.bin", NULL, 9, 0x80},
    {"v1-snapshot.bin", NULL, 5000, 0x10},
    {"v1-snapshot.bin", NULL, -5, 0x01},
    {"v1-snapshot.bin", NULL, -1, 0x80},
    /* the directory's "TXCKPT01" checkpoint */
    {"v1-dir/checkpoint.bin", NULL, 0, 0},
    {"v1-dir/checkpoint.bin", NULL, 64, 0},
    {"v1-dir/checkpoint.bin", NULL, -1, 0},
    {"v1-dir/checkpoint.bin", NULL, 3, 0x01},
    {"v1-dir/checkpoint.bin", NULL, 24, 0x01},
    {"v1-dir/checkpoint.bin", NULL, 5000, 0x40},
    {"v1-dir/checkpoint.bin", NULL, -1, 0x01},
};

/* The instance's contents, to compare before and after a refused load. */
struct state {
    txstats_summary_t s;
    uint64_t keys;
    txstats_amount_t q[NQ];
    txstats_list_info_t info;
    txstats_tx_t list[8];
};

static void take_state(txstats_t *t, struct state *st)
{
    memset(st, 0, sizeof(*st));
    assert_int_equal(txstats_stats(t, &st->s), TXSTATS_OK);
    assert_int_equal(txstats_key_count(t, &st->keys), TXSTATS_OK);
    quantiles(t, st->q);
    assert_int_equal(txstats_get_ex(t, st->list, 8, &st->info), TXSTATS_OK);
}

static bool same_state(const struct state *a, const struct state *b)
{
    return a->s.count == b->s.count && a->s.sum_hi == b->s.sum_hi && a->s.sum_lo == b->s.sum_lo &&
           a->s.min == b->s.min && a->s.max == b->s.max && a->keys == b->keys &&
           memcmp(a->q, b->q, sizeof(a->q)) == 0 && a->info.in_window == b->info.in_window &&
           a->info.retained == b->info.retained && a->info.written == b->info.written &&
           memcmp(a->list, b->list, sizeof(a->list)) == 0;
}

/* An instance holding a little of its own. */
static txstats_t *make_populated(struct fake_clock *clk)
{
    txstats_t *t = make_old_like(clk, OLD_T0);
    assert_int_equal(txstats_add(t, amt("1.25"), OLD_T0 - 10), TXSTATS_OK);
    assert_int_equal(txstats_add(t, amt("-7.5"), OLD_T0 - 5), TXSTATS_OK);
    assert_int_equal(txstats_add_keyed(t, amt("3"), OLD_T0 - 1, "mine", 4, NULL), TXSTATS_OK);
    return t;
}

/* The damaged copy of table entry `dm` (freed by the caller); *at receives the offset. */
static uint8_t *damaged(const struct damage *dm, size_t *len, size_t *at, char *what, size_t wlen)
{
    char src[512];
    data_path(src, sizeof(src), dm->file);
    uint8_t *data = read_all(src, len);
    if (dm->pattern) {
        data[*len] = 0;
        const char *p = strstr((const char *)data, dm->pattern);
        assert_non_null(p);
        *at = (size_t)(p - (const char *)data) + (size_t)dm->at;
    } else {
        *at = dm->at >= 0 ? (size_t)dm->at : *len - (size_t)-dm->at;
    }
    assert_true(*at < *len);
    if (dm->flip)
        data[*at] ^= dm->flip;
    else
        *len = *at;
    snprintf(what, wlen, "%s %s at %zu (%s)", dm->file, dm->flip ? "flipped" : "cut", *at,
             dm->pattern ? dm->pattern : "offset");
    return data;
}

/* txstats_load_ex() refuses each damaged snapshot, the instance as it was. */
static void test_damaged_snapshots_refused(void **state)
{
    for (size_t i = 0; i < sizeof(DAMAGES) / sizeof(DAMAGES[0]); i++) {
        const struct damage *dm = &DAMAGES[i];
        char path[512], what[160];
        size_t len, at;
        if (strncmp(dm->file, "v1-dir/", 7) == 0)
            continue;
        uint8_t *data = damaged(dm, &len, &at, what, sizeof(what));
        snprintf(path, sizeof(path), "%s/damaged-%zu", tmp, i);
        write_all(path, data, len);

        struct fake_clock clk;
        struct state before, after;
        txstats_t *t = make_populated(&clk);
        txstats_load_info_t info;
        take_state(t, &before);
        int rc = txstats_load_ex(t, path, &info);
        if (rc != TXSTATS_EFORMAT)
            fail_msg("%s: %s, want TXSTATS_EFORMAT", what, txstats_strerror(rc));
        take_state(t, &after);
        if (!same_state(&before, &after))
            fail_msg("%s: refused, but the instance changed (count %" PRIu64 " -> %" PRIu64
                     ", keys %" PRIu64 " -> %" PRIu64 ")",
                     what, before.s.count, after.s.count, before.keys, after.keys);
        txstats_destroy(t);
        free(data);
    }
}

/* txstats_open_dir() refuses a directory whose old checkpoint is damaged and changes no file.
 * Like any failed open_dir (0.x did the same), it leaves the instance empty and detached: with
 * the checkpoint repaired, a second open_dir recovers everything. */
static void test_damaged_checkpoint_refused(void **state)
{
    char src[512], good[512];
    size_t good_len, journal_len;
    data_path(src, sizeof(src), "v1-dir");
    data_path(good, sizeof(good), "v1-dir/checkpoint.bin");
    uint8_t *good_data = read_all(good, &good_len);
    for (size_t i = 0; i < sizeof(DAMAGES) / sizeof(DAMAGES[0]); i++) {
        const struct damage *dm = &DAMAGES[i];
        char dir[512], path[512], what[160];
        size_t len, at;
        if (strncmp(dm->file, "v1-dir/", 7) != 0)
            continue;
        uint8_t *data = damaged(dm, &len, &at, what, sizeof(what));
        snprintf(dir, sizeof(dir), "%s/damaged-%zu", tmp, i);
        copy_dir(src, dir);
        snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
        write_all(path, data, len);

        struct fake_clock clk;
        txstats_t *t = make_populated(&clk);
        txstats_durability_t d;
        txstats_recovery_t rep;
        txstats_summary_t s;
        uint64_t held;
        txstats_durability_init(&d);
        d.fsync = TXSTATS_FSYNC_NEVER;
        int rc = txstats_open_dir(t, dir, &d, &rep);
        if (rc != TXSTATS_EFORMAT)
            fail_msg("%s: %s, want TXSTATS_EFORMAT", what, txstats_strerror(rc));
        size_t now_len;
        uint8_t *now = read_all(path, &now_len);
        assert_int_equal(now_len, len);
        assert_memory_equal(now, data, len);
        free(now);
        snprintf(path, sizeof(path), "%s/journal-0-0000000000000005.log", dir);
        free(read_all(path, &journal_len));
        assert_int_equal(journal_len, 2240);
        assert_int_equal(txstats_stats(t, &s), TXSTATS_OK);
        assert_int_equal(s.count, 0);
        assert_int_equal(txstats_key_count(t, &held), TXSTATS_OK);
        assert_int_equal(held, 0);

        snprintf(path, sizeof(path), "%s/checkpoint.bin", dir);
        write_all(path, good_data, good_len);
        assert_int_equal(txstats_open_dir(t, dir, &d, &rep), TXSTATS_OK);
        assert_stats_as(t, &JDIR);
        txstats_destroy(t);
        free(data);
    }
    free(good_data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshots_load),
        cmocka_unit_test(test_snapshots_load_later),
        cmocka_unit_test_setup_teardown(test_approximate_in_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_snapshots_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_checkpoint_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
