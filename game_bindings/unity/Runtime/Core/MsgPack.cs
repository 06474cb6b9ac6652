// A small msgpack codec for Scorewright's wire messages (no dependencies, no reflection).
//
// Written by hand because Unity projects cannot be assumed to carry MessagePack-CSharp, and the
// protocol only needs maps, arrays, strings, numbers, booleans, nil and bin. Encodes the way
// Python's msgpack does (smallest integer form, float64 for doubles, str8 for short strings),
// so both sides produce identical bytes for identical messages (game_bindings/golden/).
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;

namespace Scorewright.Core
{
    /// <summary>Thrown for bytes that are not a msgpack value this codec understands.</summary>
    public sealed class MsgPackException : Exception
    {
        public MsgPackException(string message) : base(message) { }
    }

    public static class MsgPack
    {
        // ---------------------------------------------------------------- encoding
        /// <summary>Encode null, bool, integers, float/double, string, byte[], IDictionary, IList.</summary>
        public static byte[] Encode(object value)
        {
            var stream = new MemoryStream(64);
            Write(stream, value);
            return stream.ToArray();
        }

        public static void Write(Stream s, object value)
        {
            if (value == null) { s.WriteByte(0xc0); return; }
            if (value is bool) { s.WriteByte((bool)value ? (byte)0xc3 : (byte)0xc2); return; }
            if (value is string) { WriteString(s, (string)value); return; }
            if (value is byte[]) { WriteBin(s, (byte[])value); return; }
            if (value is double || value is float || value is decimal)
            {
                s.WriteByte(0xcb);
                WriteBigEndian(s, (ulong)BitConverter.DoubleToInt64Bits(Convert.ToDouble(value, CultureInfo.InvariantCulture)), 8);
                return;
            }
            if (value is ulong) { WriteUnsigned(s, (ulong)value); return; }
            if (value is sbyte || value is byte || value is short || value is ushort || value is int ||
                value is uint || value is long || value is Enum)
            {
                WriteInteger(s, Convert.ToInt64(value, CultureInfo.InvariantCulture));
                return;
            }
            var map = value as IDictionary;
            if (map != null)
            {
                WriteCollectionHeader(s, map.Count, 0x80, 0xde, 0xdf);
                foreach (DictionaryEntry e in map) { Write(s, e.Key); Write(s, e.Value); }
                return;
            }
            var list = value as IList;
            if (list != null)
            {
                WriteCollectionHeader(s, list.Count, 0x90, 0xdc, 0xdd);
                foreach (var item in list) Write(s, item);
                return;
            }
            throw new MsgPackException("cannot encode a " + value.GetType().Name + " (use maps, lists, strings, numbers, bools, null or byte[])");
        }

        static void WriteInteger(Stream s, long v)
        {
            if (v >= 0) { WriteUnsigned(s, (ulong)v); return; }
            if (v >= -32) s.WriteByte((byte)(sbyte)v);
            else if (v >= sbyte.MinValue) { s.WriteByte(0xd0); s.WriteByte((byte)(sbyte)v); }
            else if (v >= short.MinValue) { s.WriteByte(0xd1); WriteBigEndian(s, (ulong)v, 2); }
            else if (v >= int.MinValue) { s.WriteByte(0xd2); WriteBigEndian(s, (ulong)v, 4); }
            else { s.WriteByte(0xd3); WriteBigEndian(s, (ulong)v, 8); }
        }

        static void WriteUnsigned(Stream s, ulong v)
        {
            if (v < 0x80) s.WriteByte((byte)v);
            else if (v <= byte.MaxValue) { s.WriteByte(0xcc); s.WriteByte((byte)v); }
            else if (v <= ushort.MaxValue) { s.WriteByte(0xcd); WriteBigEndian(s, v, 2); }
            else if (v <= uint.MaxValue) { s.WriteByte(0xce); WriteBigEndian(s, v, 4); }
            else { s.WriteByte(0xcf); WriteBigEndian(s, v, 8); }
        }

        static void WriteString(Stream s, string str)
        {
            var bytes = Encoding.UTF8.GetBytes(str);
            if (bytes.Length < 32) s.WriteByte((byte)(0xa0 | bytes.Length));
            else WriteLengthHeader(s, bytes.Length, 0xd9, 0xda, 0xdb);
            s.Write(bytes, 0, bytes.Length);
        }

        static void WriteBin(Stream s, byte[] bytes)
        {
            WriteLengthHeader(s, bytes.Length, 0xc4, 0xc5, 0xc6);
            s.Write(bytes, 0, bytes.Length);
        }

        /// <summary>Map/array header: fix form below 16 entries, else a 16- or 32-bit count.</summary>
        static void WriteCollectionHeader(Stream s, int n, int fix, int code16, int code32)
        {
            if (n < 16) s.WriteByte((byte)(fix | n));
            else WriteSize(s, n, code16, code32);
        }

        /// <summary>str/bin header: 8-bit length, else a 16- or 32-bit one.</summary>
        static void WriteLengthHeader(Stream s, int n, int code8, int code16, int code32)
        {
            if (n <= byte.MaxValue) { s.WriteByte((byte)code8); s.WriteByte((byte)n); }
            else WriteSize(s, n, code16, code32);
        }

        static void WriteSize(Stream s, int n, int code16, int code32)
        {
            if (n <= ushort.MaxValue) { s.WriteByte((byte)code16); WriteBigEndian(s, (ulong)n, 2); }
            else { s.WriteByte((byte)code32); WriteBigEndian(s, (ulong)n, 4); }
        }

        static void WriteBigEndian(Stream s, ulong v, int bytes)
        {
            for (int i = bytes - 1; i >= 0; i--) s.WriteByte((byte)(v >> (8 * i)));
        }

        // ---------------------------------------------------------------- decoding
        /// <summary>Decode one value. Maps become Dictionary&lt;string, object&gt; (keys as strings),
        /// arrays List&lt;object&gt;, integers long (ulong above long.MaxValue), floats double,
        /// str string, bin byte[].</summary>
        public static object Decode(byte[] data)
        {
            int pos = 0;
            var value = Read(data, ref pos, 0);
            if (pos != data.Length)
                throw new MsgPackException("trailing bytes after the value at offset " + pos);
            return value;
        }

        const int MaxDepth = 64;

        public static object Read(byte[] d, ref int pos, int depth)
        {
            if (depth > MaxDepth) throw new MsgPackException("nesting deeper than " + MaxDepth);
            byte b = Take(d, ref pos, 1)[0];
            if (b <= 0x7f) return (long)b;
            if (b >= 0xe0) return (long)(sbyte)b;
            if ((b & 0xf0) == 0x80) return ReadMap(d, ref pos, b & 0x0f, depth);
            if ((b & 0xf0) == 0x90) return ReadArray(d, ref pos, b & 0x0f, depth);
            if ((b & 0xe0) == 0xa0) return ReadString(d, ref pos, b & 0x1f);
            switch (b)
            {
                case 0xc0: return null;
                case 0xc2: return false;
                case 0xc3: return true;
                case 0xc4: return ReadBytes(d, ref pos, (int)ReadUnsigned(d, ref pos, 1));
                case 0xc5: return ReadBytes(d, ref pos, (int)ReadUnsigned(d, ref pos, 2));
                case 0xc6: return ReadBytes(d, ref pos, Length(ReadUnsigned(d, ref pos, 4)));
                case 0xca:
                    return (double)BitConverter.ToSingle(BitConverter.GetBytes((uint)ReadUnsigned(d, ref pos, 4)), 0);
                case 0xcb: return BitConverter.Int64BitsToDouble((long)ReadUnsigned(d, ref pos, 8));
                case 0xcc: return (long)ReadUnsigned(d, ref pos, 1);
                case 0xcd: return (long)ReadUnsigned(d, ref pos, 2);
                case 0xce: return (long)ReadUnsigned(d, ref pos, 4);
                case 0xcf:
                    ulong u = ReadUnsigned(d, ref pos, 8);
                    return u <= long.MaxValue ? (object)(long)u : u;
                case 0xd0: return (long)(sbyte)ReadUnsigned(d, ref pos, 1);
                case 0xd1: return (long)(short)ReadUnsigned(d, ref pos, 2);
                case 0xd2: return (long)(int)ReadUnsigned(d, ref pos, 4);
                case 0xd3: return (long)ReadUnsigned(d, ref pos, 8);
                case 0xd9: return ReadString(d, ref pos, (int)ReadUnsigned(d, ref pos, 1));
                case 0xda: return ReadString(d, ref pos, (int)ReadUnsigned(d, ref pos, 2));
                case 0xdb: return ReadString(d, ref pos, Length(ReadUnsigned(d, ref pos, 4)));
                case 0xdc: return ReadArray(d, ref pos, (int)ReadUnsigned(d, ref pos, 2), depth);
                case 0xdd: return ReadArray(d, ref pos, Length(ReadUnsigned(d, ref pos, 4)), depth);
                case 0xde: return ReadMap(d, ref pos, (int)ReadUnsigned(d, ref pos, 2), depth);
                case 0xdf: return ReadMap(d, ref pos, Length(ReadUnsigned(d, ref pos, 4)), depth);
            }
            throw new MsgPackException(string.Format("unsupported msgpack type byte 0x{0:x2} at offset {1}", b, pos - 1));
        }

        static int Length(ulong n)
        {
            if (n > int.MaxValue) throw new MsgPackException("length " + n + " is too large");
            return (int)n;
        }

        static ArraySegment<byte> Take(byte[] d, ref int pos, int n)
        {
            if (n < 0 || pos + n > d.Length)
                throw new MsgPackException("truncated message: needed " + n + " bytes at offset " + pos);
            var seg = new ArraySegment<byte>(d, pos, n);
            pos += n;
            return seg;
        }

        static ulong ReadUnsigned(byte[] d, ref int pos, int n)
        {
            var seg = Take(d, ref pos, n);
            ulong v = 0;
            for (int i = 0; i < n; i++) v = (v << 8) | seg.Array[seg.Offset + i];
            return v;
        }

        static byte[] ReadBytes(byte[] d, ref int pos, int n)
        {
            var seg = Take(d, ref pos, n);
            var copy = new byte[n];
            Buffer.BlockCopy(seg.Array, seg.Offset, copy, 0, n);
            return copy;
        }

        static string ReadString(byte[] d, ref int pos, int n)
        {
            var seg = Take(d, ref pos, n);
            return Encoding.UTF8.GetString(seg.Array, seg.Offset, n);
        }

        static List<object> ReadArray(byte[] d, ref int pos, int n, int depth)
        {
            if (n > d.Length - pos) throw new MsgPackException("array of " + n + " items cannot fit in the message");
            var list = new List<object>(n);
            for (int i = 0; i < n; i++) list.Add(Read(d, ref pos, depth + 1));
            return list;
        }

        static Dictionary<string, object> ReadMap(byte[] d, ref int pos, int n, int depth)
        {
            if (n > d.Length - pos) throw new MsgPackException("map of " + n + " entries cannot fit in the message");
            var map = new Dictionary<string, object>(n);
            for (int i = 0; i < n; i++)
            {
                var key = Read(d, ref pos, depth + 1);
                map[Convert.ToString(key, CultureInfo.InvariantCulture) ?? ""] = Read(d, ref pos, depth + 1);
            }
            return map;
        }
    }
}
