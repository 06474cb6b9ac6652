// Starts the Scorewright server a game uses (the one it ships, or a development install) and
// stops it again.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Scorewright.Core
{
    /// <summary>
    /// Runs `serve MAP` of the server a game ships (a `scorewright bundle` folder, e.g.
    /// StreamingAssets/Scorewright) or of `scorewright` on the PATH, on free ports, with a ring
    /// name and a token of its own and `--parent-pid` (this process), so the server also stops by
    /// itself within a second if the game crashes or is killed. The token travels in the server's
    /// environment (SCOREWRIGHT_TOKEN), which only this user can read, never on its command line,
    /// which every local user can. Desktop platforms only.
    /// </summary>
    public sealed class ServerLauncher : IDisposable
    {
        /// <summary>The bundled server's executable name (".exe" is added on Windows).</summary>
        public const string BundleExecutable = "scorewright-server";
        /// <summary>The environment variable `serve` takes its token from.</summary>
        public const string TokenVariable = "SCOREWRIGHT_TOKEN";

        public Process Process { get; private set; }
        public int TcpPort { get; private set; }
        public string Token { get; private set; }
        public string Ring { get; private set; }
        public string Command { get; private set; }
        public List<string> Arguments { get; private set; }
        public bool Running { get { return Process != null && !Process.HasExited; } }

        static bool Windows { get { return Path.DirectorySeparatorChar == '\\'; } }

        /// <summary>The bundled server's executable in `folder`, or null when there is none.</summary>
        public static string FindBundled(string folder)
        {
            if (string.IsNullOrEmpty(folder)) return null;
            string path = Path.Combine(folder, BundleExecutable + (Windows ? ".exe" : ""));
            return File.Exists(path) ? Path.GetFullPath(path) : null;
        }

        /// <summary>`command` on the PATH (or the path given, if it exists), or null.</summary>
        public static string FindOnPath(string command)
        {
            if (string.IsNullOrEmpty(command)) return null;
            if (command.IndexOf(Path.DirectorySeparatorChar) >= 0 || command.IndexOf('/') >= 0)
                return File.Exists(command) ? command : null;
            string path = Environment.GetEnvironmentVariable("PATH") ?? "";
            foreach (string folder in path.Split(Path.PathSeparator))
            {
                if (folder.Length == 0) continue;
                foreach (string suffix in Windows ? new[] { ".exe", ".cmd", "" } : new[] { "" })
                {
                    string candidate = Path.Combine(folder, command + suffix);
                    if (File.Exists(candidate)) return candidate;
                }
            }
            return null;
        }

        /// <summary>`count` distinct TCP ports free on 127.0.0.1 now.</summary>
        public static int[] FreePorts(int count)
        {
            var listeners = new List<TcpListener>();
            try
            {
                for (int i = 0; i < count; i++)
                {
                    var l = new TcpListener(IPAddress.Loopback, 0);
                    l.Start();
                    listeners.Add(l);
                }
                return listeners.ConvertAll(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
            }
            finally
            {
                foreach (var l in listeners) l.Stop();
            }
        }

        static string RandomHex(int bytes)
        {
            var data = new byte[bytes];
            using (var rng = RandomNumberGenerator.Create()) rng.GetBytes(data);
            var sb = new StringBuilder(bytes * 2);
            foreach (byte b in data) sb.Append(b.ToString("x2"));
            return sb.ToString();
        }

        /// <summary>Quotes one argument the way ProcessStartInfo.Arguments is split (MSVC rules,
        /// which mono follows too).</summary>
        public static string Quote(string arg)
        {
            if (arg.Length > 0 && arg.IndexOfAny(new[] { ' ', '\t', '"' }) < 0) return arg;
            var sb = new StringBuilder("\"");
            int slashes = 0;
            foreach (char c in arg)
            {
                if (c == '\\') { slashes++; continue; }
                sb.Append('\\', c == '"' ? slashes * 2 + 1 : slashes);
                slashes = 0;
                sb.Append(c);
            }
            sb.Append('\\', slashes * 2);
            return sb.Append('"').ToString();
        }

        /// <summary>Starts `executable serve map` plus `extra` (later arguments override earlier
        /// ones). Throws on failure (the message says what was run).</summary>
        public void Start(string executable, string map, IEnumerable<string> extra = null)
        {
            Stop();
            int[] ports = FreePorts(3);
            TcpPort = ports[2];
            Token = RandomHex(16);
            int self = Process.GetCurrentProcess().Id;
            Ring = "unity-" + self + "-" + RandomHex(4);
            Command = executable;
            Arguments = new List<string> {
                "serve", map, "--control-port", ports[0].ToString(), "--audio-port", ports[1].ToString(),
                "--tcp-port", TcpPort.ToString(), "--ring", Ring, "--web-port", "0",
                "--parent-pid", self.ToString(),
            };
            if (extra != null) Arguments.AddRange(extra);
            if (!Windows) MakeExecutable(executable);
            var info = new ProcessStartInfo
            {
                FileName = executable,
                Arguments = string.Join(" ", Arguments.ConvertAll(Quote).ToArray()),
                UseShellExecute = false, CreateNoWindow = true,
            };
            info.EnvironmentVariables[TokenVariable] = Token;
            Process = Process.Start(info);
        }

        /// <summary>A build tool may drop the executable bit of files it copies (StreamingAssets).</summary>
        static void MakeExecutable(string path)
        {
            try
            {
                using (var chmod = Process.Start(new ProcessStartInfo("chmod", "u+x " + Quote(path)) { UseShellExecute = false }))
                    chmod.WaitForExit(2000);
            }
            catch (Exception) { /* a command on the PATH, or no chmod: start it as it is */ }
        }

        /// <summary>Stops the server: SIGTERM (it stops cleanly and removes its ring) and up to
        /// `graceMs` to exit, then a kill; on Windows a kill at once.</summary>
        public void Stop(int graceMs = 3000)
        {
            var p = Process;
            Process = null;
            if (p == null) return;
            try
            {
                if (!p.HasExited && !Windows)
                {
                    using (var kill = Process.Start(new ProcessStartInfo("kill", "-TERM " + p.Id) { UseShellExecute = false }))
                        kill.WaitForExit(2000);
                    p.WaitForExit(graceMs);
                }
                if (!p.HasExited) p.Kill();
            }
            catch (InvalidOperationException) { /* it has exited meanwhile */ }
            finally { p.Dispose(); }
        }

        /// <summary>The command line, for messages (the token is not on it).</summary>
        public string Describe()
        {
            return Command + " " + string.Join(" ", (Arguments ?? new List<string>()).ToArray());
        }

        public void Dispose() { Stop(); }
    }
}
