// Scorewright's framed TCP transport: u32 little-endian length + msgpack map, both ways.
using System;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Threading;

namespace Scorewright.Core
{
    /// <summary>
    /// One connection to `scorewright serve --tcp-port`, kept alive by a background thread that
    /// reconnects with exponential backoff (0.25 s doubling to 5 s) and sends `hello` first each
    /// time. Messages are delivered on that thread through `MessageReceived`.
    /// </summary>
    public sealed class FramedTcpConnection : IDisposable
    {
        public const int MaxMessage = 1 << 20;
        const int MinBackoffMs = 250;
        /// <summary>Longest wait between connection attempts (5 s; shorter for a server the
        /// game has just started, which listens within a second or so).</summary>
        public int MaxBackoffMs = 5000;

        readonly string host;
        readonly int port;
        readonly Func<Dictionary<string, object>> hello;
        readonly object sendLock = new object();
        volatile bool running;
        Thread thread;
        TcpClient client;
        NetworkStream stream;

        /// <summary>Called on the connection thread for every message the server sends.</summary>
        public event Action<Dictionary<string, object>> MessageReceived;
        /// <summary>Called on the connection thread with true on connect, false on loss.</summary>
        public event Action<bool> ConnectionChanged;
        /// <summary>Why the last attempt failed (for logs and the inspector), or null.</summary>
        public string LastError { get; private set; }
        public bool Connected { get { return stream != null; } }
        public int Reconnects { get; private set; }

        /// <param name="hello">Builds the `hello` message sent first on every (re)connect.</param>
        public FramedTcpConnection(string host, int port, Func<Dictionary<string, object>> hello)
        {
            this.host = host;
            this.port = port;
            this.hello = hello;
        }

        public void Start()
        {
            if (running) return;
            running = true;
            thread = new Thread(Run) { IsBackground = true, Name = "scorewright-tcp" };
            thread.Start();
        }

        /// <summary>Send one message; false (and nothing sent) while disconnected.</summary>
        public bool Send(Dictionary<string, object> message)
        {
            byte[] payload = MsgPack.Encode(message);
            if (payload.Length > MaxMessage) throw new ArgumentException("message over 1 MiB: " + payload.Length + " bytes");
            var framed = new byte[4 + payload.Length];
            WriteU32(framed, payload.Length);
            Buffer.BlockCopy(payload, 0, framed, 4, payload.Length);
            lock (sendLock)
            {
                var s = stream;
                if (s == null) return false;
                try { s.Write(framed, 0, framed.Length); return true; }
                catch (Exception e) when (e is IOException || e is ObjectDisposedException || e is SocketException)
                {
                    LastError = e.Message;
                    Drop();
                    return false;
                }
            }
        }

        void Run()
        {
            int backoff = MinBackoffMs;
            while (running)
            {
                try
                {
                    var c = new TcpClient { NoDelay = true };
                    c.Connect(host, port);
                    lock (sendLock) { client = c; stream = c.GetStream(); }
                    backoff = MinBackoffMs;
                    LastError = null;
                    Send(hello());
                    Raise(true);
                    ReadLoop(c.GetStream());
                }
                catch (Exception e) when (e is IOException || e is SocketException || e is ObjectDisposedException || e is MsgPackException)
                {
                    LastError = e.Message;
                }
                bool wasConnected = Connected;
                Drop();
                if (wasConnected) Raise(false);
                if (!running) break;
                Thread.Sleep(Math.Min(backoff, MaxBackoffMs));
                backoff = Math.Max(Math.Min(backoff * 2, MaxBackoffMs), 10);
                Reconnects++;
            }
        }

        void ReadLoop(NetworkStream s)
        {
            var header = new byte[4];
            while (running)
            {
                ReadExactly(s, header, 4);
                uint length = (uint)header[0] | (uint)header[1] << 8 | (uint)header[2] << 16 | (uint)header[3] << 24;
                if (length > MaxMessage) throw new IOException("server sent a frame of " + length + " bytes (limit 1 MiB)");
                int n = (int)length;
                var payload = new byte[n];
                ReadExactly(s, payload, n);
                var map = MsgPack.Decode(payload) as Dictionary<string, object>;
                if (map == null) continue;                 // not a map: not a protocol message
                var handler = MessageReceived;
                if (handler == null) continue;
                try { handler(map); }
                catch (Exception e)
                {   // a handler's bug (or a message it did not expect) must not end the connection
                    LastError = "message handler: " + e.Message;
                }
            }
        }

        static void ReadExactly(Stream s, byte[] buffer, int n)
        {
            int got = 0;
            while (got < n)
            {
                int k = s.Read(buffer, got, n - got);
                if (k <= 0) throw new IOException("the server closed the connection");
                got += k;
            }
        }

        static void WriteU32(byte[] b, int v)
        {
            b[0] = (byte)v; b[1] = (byte)(v >> 8); b[2] = (byte)(v >> 16); b[3] = (byte)(v >> 24);
        }

        void Raise(bool connected)
        {
            var handler = ConnectionChanged;
            if (handler != null) handler(connected);
        }

        void Drop()
        {
            lock (sendLock)
            {
                if (client != null) client.Close();
                client = null;
                stream = null;
            }
        }

        public void Dispose()
        {
            running = false;
            Drop();
            if (thread != null && thread != Thread.CurrentThread) thread.Join(2000);
        }
    }
}
