/* The device → segments lookup's index over a tenant's rules: it reads a device once and
 * names the few rules worth matching, instead of comparing the device's bytes with every
 * rule's.
 *
 * Values: every (text field, value), (tags, tag) and (attribute code, value) that a rule
 * tests with == or != (properties: every listed value) gets a number, written into the rule
 * (ev_con.vid, ev_prop.vids). ev_index_device marks the numbers of the values a device has;
 * the matcher then answers such a constraint with one bit (ev_match_with). A device's value
 * that no rule names has no number and marks nothing, which is right: no rule's equality can
 * hold on it. Attribute values are keyed as jsonb compares them for equality: a string by
 * its bytes, a number by its value (4 and 4.0 are one number), never a string as a number.
 *
 * Candidates: a rule that cannot hold without one of a few values (an AND group's ==, an OR
 * group of only ==, an /audiences rule's first property) is a candidate only for devices
 * that have one of them; a rule with no such value is always one, a segment without a rule
 * never (its added devices are the caller's to add). */
#ifndef SEGMENTD_EVAL_LOOKUP_INDEX_H
#define SEGMENTD_EVAL_LOOKUP_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "eval/match.h"
#include "eval/rule.h"

typedef struct ev_lookup_index ev_lookup_index;

/* The index of n rules (rules[i] is rule i; the rules are numbered in place and must outlive
 * the index), or NULL when memory ran out: the rules may then hold numbers of an index that
 * is gone, harmless since ev_match_with without bits never reads them. */
ev_lookup_index *ev_index_build(ev_rule *const *rules, size_t n);
void ev_index_free(ev_lookup_index *ix);

/* The uint64_t words of a device's value marks, and of a candidate set (one bit a rule). */
size_t ev_index_value_words(const ev_lookup_index *ix);
size_t ev_index_rule_words(const ev_lookup_index *ix);

/* Marks in values (ev_index_value_words words, zeroed by the caller) the numbers of d's
 * values, and sets in rules (ev_index_rule_words words) the rules worth matching against d. */
void ev_index_device(const ev_lookup_index *ix, const ev_device *d, uint64_t *values, uint64_t *rules);

#endif
