// Package manscdp reads and writes MANSCDP bodies, the XML carried in SIP
// MESSAGE requests between GB/T 28181 devices and platforms (GB/T
// 28181-2016 Annex A). It is the one place Vigil parses these bodies.
//
// # Covered
//
// Decode turns a body into a *Query (Catalog, DeviceInfo, DeviceStatus,
// RecordInfo with StartTime/EndTime/Type), a *Response (Catalog with SumNum
// and a DeviceList of Items; DeviceInfo; DeviceStatus; RecordInfo with
// SumNum and a RecordList; DeviceControl and Alarm with Result), a *Notify
// (Keepalive, Alarm, Catalog notify with ADD/DEL/ON/OFF/UPDATE events) or a
// *Control (DeviceControl with PTZCmd, IFameCmd, GuardCmd, RecordCmd,
// TeleBoot). Encoder.Marshal writes the same types; constructors build the
// messages Vigil sends (CatalogQuery, DeviceInfoQuery, RecordInfoQuery,
// KeepaliveNotify, PTZControl, ResultResponse, AlarmResponse), and Encoder.CatalogPages
// splits a catalog answer into MESSAGE bodies that all carry the same SumNum,
// including business groups (type 215) and virtual organisations (type 216)
// built with BusinessGroupItem and VirtualOrgItem; Encoder.RecordInfoPages
// does the same for recordings. A catalog subscription (SUBSCRIBE) carries a
// Catalog Query, optionally with StartTime/EndTime, and is answered by
// Catalog notifies; both are these types, the SIP dialog is the caller's. PTZCmd builds and parses
// the 8-byte pan/tilt/zoom command of A.3.
//
// # Encodings
//
// The charset is the one named by the XML declaration: GB2312, GBK,
// GB18030 (and their common aliases) or UTF-8. A body without a declaration,
// or whose declaration names no encoding, is GB2312, as devices that omit it
// send GB2312 (XML's own default would be UTF-8). The GB family is decoded
// as GB18030, its superset, because devices that declare GB2312 send GBK
// characters. Encoder writes GB2312 by default (every device reads it),
// GBK, GB18030 or UTF-8 on request, with the matching declaration; a
// character outside the chosen set is reported as *UnencodableError, or,
// with Encoder.Fallback, the whole body is written and declared as GB18030.
// DecodeCharset reports the charset a body was read in, so an answer can use
// the same; DecodeAs ignores the declaration for a device configured as
// sending another charset.
//
// # Strictness
//
// Decode is strict where a lenient reading would mislead the caller, and
// lenient where devices are known to differ harmlessly:
//
//   - A body over MaxBodySize (1 MiB) is refused before parsing (bounded work).
//   - Bytes invalid in the declared charset are an error with the byte
//     offset and the text before it, not silently replaced by U+FFFD: a
//     wrong declaration would otherwise turn every Chinese name into noise.
//     When such a body is valid UTF-8 the error says so: the common fault is
//     a device that declares GB2312 but sends UTF-8.
//   - An unknown root or CmdType is an *UnsupportedError, so a caller can
//     answer 'not supported' rather than treat the device as broken.
//   - CmdType, SN (a non-negative integer) and DeviceID (20 digits) are
//     required in every message; each command's own required fields (SumNum
//     for Catalog and RecordInfo responses and catalog notifies, item
//     DeviceIDs, catalog notify Events, RecordInfo times, keepalive Status,
//     alarm priority/method/time, control commands) are checked and reported
//     as *FieldError naming the element path, e.g.
//     "DeviceList/Item[3]/DeviceID".
//   - Malformed XML, text or a second element after the root, and enumerated
//     values outside their set (Status, Event, Result, RecordCmd, GuardCmd,
//     a PTZCmd with a bad checksum) are errors.
//   - Unknown child elements are ignored: vendors add their own, and
//     refusing them would refuse most real devices. Status accepts
//     ONLINE/OFFLINE and any letter case; times accept a space for the T.
//     DeviceList's Num attribute is not checked against the items, since
//     devices get it wrong and the items are what counts.
package manscdp
