from node:20-alpine
workdir /usr/src/app
onbuild COPY package*.json ./
onbuild RUN npm ci --omit=dev
ONBUILD copy . .
expose 3000
cmd [ "node", "server.js" ]
