// Reader side of Scorewright's shared-memory audio ring (layout: docs/protocol.md).
using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Text;
using System.Threading;

namespace Scorewright.Core
{
    public sealed class RingReader : IAudioSource, IDisposable
    {
        const int HeaderBytes = 64;
        const long OffWritePos = 24, OffReadPos = 32, OffHeartbeat = 40, OffFlags = 48;
        static readonly byte[] Magic = Encoding.ASCII.GetBytes("SWRING1\0");

        readonly MemoryMappedFile file;
        readonly MemoryMappedViewAccessor view;
        public readonly string Path;
        public readonly int SampleRate, Channels, Capacity;

        /// <summary>The ring file for a `serve --ring SESSION` on this machine.</summary>
        public static string PathFor(string session)
        {
            string dir = Directory.Exists("/dev/shm") ? "/dev/shm" : System.IO.Path.GetTempPath();
            return System.IO.Path.Combine(dir, "scorewright-" + session);
        }

        /// <summary>Open the ring at `path` and start at its newest audio, keeping `keepPairs`
        /// already-written sample pairs (a small cushion against the writer's jitter).</summary>
        public RingReader(string path, int keepPairs = 0)
        {
            Path = path;
            if (!File.Exists(path))
                throw new FileNotFoundException("no Scorewright ring at " + path + ": is `scorewright serve` running on this machine?", path);
            var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            file = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.ReadWrite,
                                                   null, HandleInheritability.None, false);
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.ReadWrite);
            var magic = new byte[8];
            view.ReadArray(0, magic, 0, 8);
            for (int i = 0; i < 8; i++)
                if (magic[i] != Magic[i])
                    throw new InvalidDataException(path + " is not a Scorewright ring (bad magic)");
            uint version = view.ReadUInt32(8);
            if (version != 1) throw new InvalidDataException(path + ": ring version " + version + ", this reader knows 1");
            SampleRate = (int)view.ReadUInt32(12);
            Channels = (int)view.ReadUInt32(16);
            Capacity = (int)view.ReadUInt32(20);
            if (view.Capacity < HeaderBytes + (long)Capacity * Channels * 4)
                throw new InvalidDataException(path + " is shorter than its header says");
            SkipToLatest(keepPairs);
        }

        /// <summary>Sample pairs ever written; samples before it are visible once it is loaded.</summary>
        public long WritePos
        {
            get
            {
                long w = view.ReadInt64(OffWritePos);
                Thread.MemoryBarrier();   // acquire: no sample load moves above this
                return w;
            }
        }
        public long ReadPos { get { return view.ReadInt64(OffReadPos); } }
        /// <summary>Sample pairs written and not yet read.</summary>
        public int Available { get { return (int)Math.Max(0, WritePos - ReadPos); } }
        /// <summary>Seconds since the server last wrote (large: the server is stalled or gone).</summary>
        public double HeartbeatAge
        {
            get
            {
                long nowNs = (DateTime.UtcNow - ScorewrightSession.UnixEpoch).Ticks * 100;
                return (nowNs - view.ReadInt64(OffHeartbeat)) / 1e9;
            }
        }
        /// <summary>The server shut down cleanly (flags bit 1).</summary>
        public bool WriterClosed { get { return (view.ReadUInt32(OffFlags) & 2) != 0; } }

        /// <summary>Drop old audio, keeping the newest `keepPairs` pairs.</summary>
        public void SkipToLatest(int keepPairs)
        {
            long w = WritePos;
            view.Write(OffReadPos, Math.Max(ReadPos, w - keepPairs));
        }

        /// <summary>Copy up to `pairs` sample pairs (interleaved) into `dest` at `offset`;
        /// returns how many were available and copied.</summary>
        public int Read(float[] dest, int offset, int pairs)
        {
            long r = ReadPos;
            long w = WritePos;
            int k = (int)Math.Min(pairs, w - r);
            if (k <= 0) return 0;
            int start = (int)(r % Capacity);
            int first = Math.Min(k, Capacity - start);
            view.ReadArray(HeaderBytes + (long)start * Channels * 4, dest, offset, first * Channels);
            if (k > first) view.ReadArray(HeaderBytes, dest, offset + first * Channels, (k - first) * Channels);
            Thread.MemoryBarrier();   // the copy completes before the server may reuse the space
            view.Write(OffReadPos, r + k);
            return k;
        }

        public void Dispose()
        {
            view.Dispose();
            file.Dispose();
        }
    }
}
