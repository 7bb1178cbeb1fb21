/**
 * The page: `useChat` from `@ai-sdk/react` with the Rewind transport. The chat's id and messages are
 * kept in localStorage, so a reload shows the conversation and `resume: true` replays the answer
 * being written into the same message. `?transport=default` uses the SDK's DefaultChatTransport
 * instead, against the same server.
 */
import { useChat } from '@ai-sdk/react'
import { RewindChatTransport } from '@rewind/ai-sdk/client'
import { DefaultChatTransport } from 'ai'
import { useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'

const ID_KEY = 'ai-chat:id'
const params = new URLSearchParams(location.search)
const chatId = localStorage.getItem(ID_KEY) ?? newChatId()
const messagesKey = `ai-chat:messages:${chatId}`
const saved = JSON.parse(localStorage.getItem(messagesKey) ?? '[]')
const transport =
  params.get('transport') === 'default'
    ? new DefaultChatTransport({ api: '/api/chat' })
    : new RewindChatTransport({ api: '/api/chat' })

function newChatId() {
  const id = crypto.randomUUID()
  localStorage.setItem(ID_KEY, id)
  return id
}

function App() {
  const { messages, sendMessage, status, error } = useChat({
    id: chatId,
    messages: saved,
    transport,
    resume: true,
  })
  const [input, setInput] = useState('')
  useEffect(() => localStorage.setItem(messagesKey, JSON.stringify(messages)), [messages])
  const submit = (event) => {
    event.preventDefault()
    if (input.trim() === '') return
    sendMessage({ text: input })
    setInput('')
  }
  const stop = () => fetch(`/api/chat/${chatId}/stop`, { method: 'POST' })
  const restart = () => {
    localStorage.removeItem(ID_KEY)
    location.reload()
  }
  return (
    <main>
      <h1>AI SDK chat on Rewind</h1>
      <p>
        Reload the page mid-answer: it carries on. Chat <code id="chat">{chatId}</code>, status{' '}
        <span id="status">{status}</span>
        {error ? <span id="error"> · {error.message}</span> : null}
      </p>
      <ul id="messages">
        {messages.map((message) => (
          <li key={message.id} data-role={message.role} data-id={message.id}>
            {message.parts.map((part) => (part.type === 'text' ? part.text : '')).join('')}
          </li>
        ))}
      </ul>
      <form onSubmit={submit}>
        <input
          id="prompt"
          value={input}
          onChange={(event) => setInput(event.target.value)}
          placeholder="Ask"
        />
        <button type="submit">Send</button>
        <button type="button" id="stop" onClick={stop}>
          Stop
        </button>
        <button type="button" id="new" onClick={restart}>
          New chat
        </button>
      </form>
    </main>
  )
}

createRoot(document.getElementById('root')).render(<App />)
